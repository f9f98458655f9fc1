"""Starts the whole mesh on loopback, one process per service, and stops it.

`make run` uses this to bring every service up (waiting for each to report
SERVING on grpc.health.v1, or on GET /healthz for the REST variant), run the
demo, and keep serving until Ctrl-C; the
end-to-end tests use the same `Mesh` so they exercise what users run. Each
process is stopped by its own PID: SIGTERM, then SIGKILL after a timeout.

With `tls` every service serves mutual TLS with the certificates in `certs_dir`
(made there if missing, services/runtime/certs.py), and this launcher probes
health as the `client` identity; `make run` does that, tests choose.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from clients.channel_options import plaintext_channel
from clients.mesh import Channels
from clients.tls import SecureChannels, TlsFiles, server_name
from clients.trading import DEFAULT_PORTS
from discovery import LocalEtcd
from discovery.local_etcd import free_port
from services.runtime.certs import CLIENT_IDENTITY, ensure_certs

SERVICE_ORDER = ("risk", "matching", "marketdata", "orders")  # dependencies first
HEALTH_NAMES = {
    "orders": "trading.v1.OrderService",
    "risk": "trading.v1.RiskService",
    "matching": "trading.v1.MatchingEngine",
    "marketdata": "trading.v1.MarketDataService",
}


def _probe_channel(address: str, tls: TlsFiles | None, identity: str) -> grpc.Channel:
    if tls is None:
        return grpc.insecure_channel(address)
    material = tls.load()
    credentials = grpc.ssl_channel_credentials(material.ca, material.key, material.cert)
    options = [("grpc.ssl_target_name_override", server_name(identity))] if identity else []
    return grpc.secure_channel(address, credentials, options=options)


def wait_serving(
    address: str, service: str, timeout: float, tls: TlsFiles | None = None, identity: str = ""
) -> None:
    """Polls grpc.health.v1 Check until `service` is SERVING or time runs out.
    With `tls` (a client's files) over mTLS, checking the server is `identity`."""
    deadline = time.monotonic() + timeout
    last_error = "no answer"
    with _probe_channel(address, tls, identity) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
                last_error = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
            except grpc.RpcError as exc:
                last_error = f"{exc.code().name}: {exc.details()}"  # type: ignore[attr-defined]
            time.sleep(0.1)
    raise TimeoutError(f"{service} at {address} not SERVING after {timeout:.0f} s ({last_error})")


def _healthz(address: str, service: str, tls: TlsFiles | None, identity: str) -> tuple[int, str]:
    """One GET /healthz?service=...: (HTTP status, body)."""
    from services.runtime.rest.tls import client_context

    host, _, port = address.rpartition(":")
    conn = http.client.HTTPConnection(host.strip("[]"), int(port), timeout=1)
    try:
        if tls is not None:  # the connection's socket, wrapped to check the server's name
            raw = socket.create_connection((host.strip("[]"), int(port)), timeout=1)
            conn.sock = client_context(tls).wrap_socket(raw, server_hostname=server_name(identity))
        conn.request("GET", f"/healthz?service={service}")
        response = conn.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        conn.close()


def wait_serving_rest(
    address: str, service: str, timeout: float, tls: TlsFiles | None = None, identity: str = ""
) -> None:
    """Polls GET /healthz until `service` is SERVING (200) or time runs out; over
    mTLS with `tls` (a client's files), checking the server is `identity`."""
    deadline = time.monotonic() + timeout
    last_error = "no answer"
    while time.monotonic() < deadline:
        try:
            status, body = _healthz(address, service, tls, identity)
            if status == 200:
                return
            last_error = f"HTTP {status}: {body[:200]}"
        except (OSError, http.client.HTTPException) as exc:
            last_error = str(exc) or type(exc).__name__
        time.sleep(0.1)
    raise TimeoutError(f"{service} at {address} not SERVING after {timeout:.0f} s ({last_error})")


@dataclass
class ServiceProcess:
    """One service process: `python -m services.<name> --port P ...`."""

    name: str
    port: int
    args: Sequence[str] = ()
    log_path: Path | None = None
    host: str = "127.0.0.1"
    # A client's mTLS files for the health probe; None when the service is plaintext.
    tls: TlsFiles | None = None
    env: dict[str, str] = field(default_factory=dict)  # added to this process's environment
    # How to probe it: grpc.health.v1, or GET /healthz for `--protocol rest`.
    protocol: Literal["grpc", "rest"] = "grpc"
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None, "the process has not been started"
        return self.process.pid

    def start(self) -> None:
        command = [sys.executable, "-m", f"services.{self.name}", "--host", self.host]
        command += ["--port", str(self.port), *self.args]
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **self.env}
            )
        finally:
            if log is not subprocess.DEVNULL:
                log.close()

    def wait_serving(self, timeout: float = 20.0) -> None:
        wait = wait_serving_rest if self.protocol == "rest" else wait_serving
        try:
            wait(self.address, HEALTH_NAMES[self.name], timeout, self.tls, self.name)
        except TimeoutError:
            code = self.process.poll() if self.process else None
            hint = f"; it exited with {code}" if code is not None else ""
            where = f"; see {self.log_path}" if self.log_path else ""
            raise TimeoutError(f"{self.name} did not start{hint}{where}") from None

    def signal(self, signum: int) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signum)

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, wait for the graceful drain, SIGKILL if it does not end."""
        if self.process is None:
            return None
        self.signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


INSTANCES = {"orders": 2, "risk": 2, "matching": 2, "marketdata": 2}
INSTANCE_PORT_STEP = 10  # instance n of a service listens on its default port + 10 n


@dataclass
class LocalMesh:
    """Every trademesh service on loopback, with its state under `state_dir`.

    With `etcd` (the default) a local etcd is started first, each service runs
    `instances[name]` processes that register themselves and find their peers
    there, and the orders processes share one SQLite file. Without it, one
    process per service finds its peers at static addresses.

    With `tls` every service serves mTLS as its own identity, with certificates
    from `tls_dir` (default state_dir/certs, issued there when missing or stale);
    without, every service runs with --plaintext.

    With `protocol="rest"` every service serves HTTP/JSON instead of gRPC
    (`--protocol rest`) and readiness is GET /healthz.
    """

    state_dir: Path
    instances: dict[str, int] = field(default_factory=lambda: dict(INSTANCES))
    ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    etcd: bool = True
    etcd_port: int = 0  # 0 picks a free one
    grace_seconds: float = 5.0
    tls: bool = False
    tls_dir: Path | None = None
    # "<service>-<n>" -> port, overriding the default port + 10 n
    instance_ports: dict[str, int] = field(default_factory=dict)
    # Each process writes its spans to trace_dir/<service>-<n>.jsonl (--trace-file).
    trace_dir: Path | None = None
    env: dict[str, str] = field(default_factory=dict)  # for every service process (OTEL_*...)
    protocol: Literal["grpc", "rest"] = "grpc"
    processes: dict[str, ServiceProcess] = field(default_factory=dict)
    registry: LocalEtcd | None = None

    @classmethod
    def on_free_ports(cls, state_dir: Path, **kwargs: Any) -> LocalMesh:
        """For tests: every port chosen by the OS."""
        instances = kwargs.setdefault("instances", dict(INSTANCES))
        kwargs.setdefault("ports", {name: free_port() for name in SERVICE_ORDER})
        kwargs["instance_ports"] = {
            f"{name}-{i}": free_port() for name in SERVICE_ORDER for i in range(instances[name])
        }
        return cls(state_dir, **kwargs)

    @property
    def certs_dir(self) -> Path:
        return self.tls_dir if self.tls_dir is not None else self.state_dir / "certs"

    def client_files(self) -> TlsFiles:
        """The external client's mTLS files (grpcurl, the demo, tests)."""
        if not self.tls:
            raise RuntimeError("this mesh serves plaintext: LocalMesh(..., tls=True) for mTLS")
        return TlsFiles.of(self.certs_dir, CLIENT_IDENTITY)

    def client_channels(self) -> Channels:
        """A channel factory for `clients.mesh.Mesh` as the external client."""
        return SecureChannels(self.client_files()) if self.tls else plaintext_channel

    def port_of(self, name: str, index: int) -> int:
        found = self.instance_ports.get(f"{name}-{index}")
        return found if found is not None else self.ports[name] + INSTANCE_PORT_STEP * index

    def addresses(self) -> dict[str, str]:
        """The first instance of each service: where grpcurl and static clients go."""
        return {name: f"127.0.0.1:{self.port_of(name, 0)}" for name in SERVICE_ORDER}

    @property
    def etcd_endpoints(self) -> str:
        return self.registry.endpoint if self.registry is not None else ""

    def instances_of(self, name: str) -> list[ServiceProcess]:
        return [p for key, p in self.processes.items() if key.rsplit("-", 1)[0] == name]

    def _args(self, name: str, index: int) -> list[str]:
        args = ["--grace-seconds", str(self.grace_seconds)]
        if self.protocol != "grpc":
            args += ["--protocol", self.protocol]
        args += ["--tls-dir", str(self.certs_dir)] if self.tls else ["--plaintext"]
        if self.registry is not None:
            args += ["--etcd-endpoints", self.registry.endpoint]
            args += ["--instance-id", f"{name}-{index}", "--lease-ttl-seconds", "3"]
        else:
            peers = self.addresses()
            if name == "orders":
                args += ["--risk-address", peers["risk"], "--matching-address", peers["matching"]]
            elif name == "marketdata":
                args += ["--matching-address", peers["matching"]]
        if name == "orders":
            args += ["--db-path", str(self.state_dir / "orders.db")]
        if self.trace_dir is not None:
            args += ["--trace-file", str(self.trace_dir / f"{name}-{index}.jsonl")]
        return args

    def start(self, timeout: float = 30.0) -> None:
        logs = self.state_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        probe_tls = None
        if self.tls:
            ensure_certs(self.certs_dir)  # keeps current certificates
            probe_tls = self.client_files()
        if self.etcd:
            self.registry = LocalEtcd(
                client_port=self.etcd_port, data_dir=self.state_dir / "etcd"
            ).start()
        counts = self.instances if self.etcd else dict.fromkeys(SERVICE_ORDER, 1)
        for name in SERVICE_ORDER:
            for index in range(counts[name]):
                key = f"{name}-{index}"
                proc = ServiceProcess(
                    name,
                    self.port_of(name, index),
                    self._args(name, index),
                    logs / f"{key}.log",
                    tls=probe_tls,
                    env=self.env,
                    protocol=self.protocol,
                )
                self.processes[key] = proc
                proc.start()
        for proc in self.processes.values():
            proc.wait_serving(timeout)

    def stop(self) -> dict[str, int | None]:
        # The edge first, so nothing new flows down while the rest drains.
        codes = {}
        for name in reversed(SERVICE_ORDER):
            for proc in self.instances_of(name):
                codes[f"{name}:{proc.port}"] = proc.stop()
        if self.registry is not None:
            self.registry.close()  # last: services deregister on their way out
        return codes

    @contextlib.contextmanager
    def running(self) -> Iterator[LocalMesh]:
        try:
            self.start()
            yield self
        finally:
            self.stop()


def grpcurl_flags(service: str, tls: TlsFiles | None) -> list[str]:
    """How grpcurl reaches `service`: as the external client over mTLS, checking
    that the server holds `service`'s certificate (-authority), or plaintext."""
    if tls is None:
        return ["-plaintext"]
    return [
        *("-cacert", str(tls.ca), "-cert", str(tls.cert), "-key", str(tls.key)),
        *("-authority", server_name(service)),
    ]


def grpcurl_examples(addresses: dict[str, str], tls: TlsFiles | None = None) -> str:
    orders, md = addresses["orders"], addresses["marketdata"]
    to_orders = shlex.join(grpcurl_flags("orders", tls))
    to_md = shlex.join(grpcurl_flags("marketdata", tls))
    order = (
        '{"account_id":"carol","client_order_id":"c-1","symbol":"AAPL","side":"SIDE_BUY",'
        '"type":"ORDER_TYPE_LIMIT","quantity":10,"price":18900}'
    )
    lines = [
        f"  grpcurl {to_orders} {orders} list",
        f"  grpcurl {to_orders} {orders} describe trading.v1.OrderService.PlaceOrder",
        f"  grpcurl {to_orders} -d '{order}' {orders} trading.v1.OrderService/PlaceOrder",
        f'  grpcurl {to_md} -d \'{{"symbol":"AAPL"}}\' {md} trading.v1.MarketDataService/GetQuote',
        f'  grpcurl {to_md} -d \'{{"symbols":["AAPL"]}}\' {md} '
        "trading.v1.MarketDataService/StreamQuotes",
        f'  grpcurl {to_orders} -d \'{{"service":"trading.v1.OrderService"}}\' {orders} '
        "grpc.health.v1.Health/Check",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run every trademesh service on loopback.")
    parser.add_argument("--state-dir", type=Path, default=Path("var"), help="db, etcd and logs")
    parser.add_argument("--no-demo", action="store_true", help="start the mesh only")
    parser.add_argument("--etcd-port", type=int, default=2379, help="port of the local etcd")
    parser.add_argument(
        "--tls-dir", type=Path, default=Path("certs"), help="mTLS certificates (make certs)"
    )
    parser.add_argument(
        "--plaintext", action="store_true", help="no TLS anywhere (local debugging only)"
    )
    args = parser.parse_args(argv)

    from clients.demo import run_demo

    mesh = LocalMesh(
        args.state_dir, etcd_port=args.etcd_port, tls=not args.plaintext, tls_dir=args.tls_dir
    )
    stop = False

    def request_stop(_signum: int, _frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    transport = "plaintext" if args.plaintext else f"mTLS, certificates in {args.tls_dir}"
    logs = args.state_dir / "logs"
    print(f"starting etcd and {', '.join(SERVICE_ORDER)} ({transport}; logs in {logs}) ...")
    with mesh.running():
        etcd_pid = mesh.registry.pid if mesh.registry else "-"
        print(f"  etcd          {mesh.etcd_endpoints}  pid {etcd_pid}")
        for key, proc in mesh.processes.items():
            print(f"  {key:<13} {proc.address}  pid {proc.pid}")
        if not args.no_demo:
            run_demo(mesh.etcd_endpoints, mesh.client_channels())
        print("\nThe mesh is up. Explore it with grpcurl (`.venv/bin/grpcurl` after make install):")
        print(grpcurl_examples(mesh.addresses(), mesh.client_files() if mesh.tls else None))
        print("\nCtrl-C stops every service gracefully.")
        while not stop:
            time.sleep(0.2)
        print("\nstopping ...")
    print("stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
