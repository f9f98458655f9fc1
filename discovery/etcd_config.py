"""Where etcd is and how to reach it: endpoints, TLS files, per-request timeout."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc

from discovery.endpoint import split_address

DEFAULT_ENDPOINTS = ("127.0.0.1:2379",)
# Long enough for a busy etcd on loopback or a LAN; short enough that a dead or leaderless
# member is given up on well inside one 5 s lease TTL, leaving time to try the next one.
REQUEST_TIMEOUT = 2.0


@dataclass(frozen=True, slots=True)
class EtcdTls:
    """PEM files for TLS to etcd. Without `ca_file` the system roots are trusted; `cert_file`
    and `key_file` (together) are the client certificate when etcd requires one."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    def __post_init__(self) -> None:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("etcd TLS needs both cert_file and key_file, or neither")

    def credentials(self) -> grpc.ChannelCredentials:
        """Reads the files now, so a missing file fails at start-up, not at first use."""

        def read(path: str | None) -> bytes | None:
            return Path(path).read_bytes() if path is not None else None

        return grpc.ssl_channel_credentials(
            root_certificates=read(self.ca_file),
            private_key=read(self.key_file),
            certificate_chain=read(self.cert_file),
        )


@dataclass(frozen=True, slots=True)
class EtcdConfig:
    """How discovery reaches etcd. Endpoints are tried in order; a failure moves to the next."""

    endpoints: tuple[str, ...] = DEFAULT_ENDPOINTS
    tls: EtcdTls | None = None
    request_timeout: float = REQUEST_TIMEOUT

    def __post_init__(self) -> None:
        if not self.endpoints:
            raise ValueError("etcd needs at least one endpoint, e.g. '127.0.0.1:2379'")
        for endpoint in self.endpoints:
            split_address(endpoint)
        if self.request_timeout <= 0:
            raise ValueError(f"request_timeout {self.request_timeout!r} must be > 0 seconds")

    @classmethod
    def from_endpoints(
        cls, endpoints: str, *, tls: EtcdTls | None = None, request_timeout: float = REQUEST_TIMEOUT
    ) -> EtcdConfig:
        """`"127.0.0.1:2379,127.0.0.1:22379"` (as in ETCDCTL_ENDPOINTS; an `http://` or
        `https://` scheme is accepted and dropped, TLS is chosen by `tls`)."""
        parsed = tuple(
            part.strip().removeprefix("http://").removeprefix("https://").rstrip("/")
            for part in endpoints.split(",")
            if part.strip()
        )
        return cls(parsed, tls, request_timeout)
