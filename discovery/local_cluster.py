"""Several LocalEtcd members on loopback forming one etcd cluster, for fail-over tests."""

from __future__ import annotations

from types import TracebackType

from discovery.local_etcd import STARTUP_TIMEOUT, LocalEtcd, free_port


class LocalEtcdCluster:
    """`n` members on loopback forming one cluster; `endpoints` is for EtcdConfig."""

    def __init__(self, n: int = 3, *, host: str = "127.0.0.1") -> None:
        if n < 1:
            raise ValueError(f"an etcd cluster needs at least one member, not {n}")
        ports = [(free_port(host), free_port(host)) for _ in range(n)]
        initial = ",".join(f"m{i}=http://{host}:{peer}" for i, (_, peer) in enumerate(ports))
        self.members = [
            LocalEtcd(
                name=f"m{i}",
                host=host,
                client_port=client,
                peer_port=peer,
                initial_cluster=initial,
            )
            for i, (client, peer) in enumerate(ports)
        ]

    @property
    def endpoints(self) -> str:
        return ",".join(member.endpoint for member in self.members)

    def __enter__(self) -> LocalEtcdCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self, timeout: float = STARTUP_TIMEOUT) -> LocalEtcdCluster:
        # Every member must be up before any can elect a leader, so spawn all, then wait.
        try:
            for member in self.members:
                member.spawn()
            for member in self.members:
                member.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        # One at a time: about 2 s for three members. SIGTERM to all at once took 8 s, as a
        # stopping leader waits for a follower (itself stopping) to take over.
        for member in self.members:
            member.stop()

    def close(self) -> None:
        for member in self.members:
            member.close()
