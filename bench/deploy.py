"""What the benchmark runs its load against: the floors and the trademesh mesh,
each process on free loopback ports, started and stopped by its own PID.

A mesh is one process per service (orders, risk, matching, marketdata) for
either transport, found at static addresses (no etcd: the registry is not on any
measured path), started by services.launcher.LocalMesh. Every deployment can
say how much CPU each of its processes has used (/proc/<pid>/stat) and, where
the server counts calls (the floors' counters, the services' Prometheus
/metrics), how many calls it answered OK.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from prometheus_client.parser import text_string_to_metric_families

from bench.measurement import Transport
from clients.tls import TlsFiles
from discovery.local_etcd import free_port
from services.launcher import LocalMesh
from services.runtime.certs import CLIENT_IDENTITY

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
METRICS_OFFSET = 1000  # services/runtime/telemetry/metrics.py: gRPC port + 1000

# What each measured call is, on each side: the process that serves it, the
# gRPC method, and the REST route (as the REST runtime labels it) and verb.
CALLS: dict[str, tuple[str, str, str, str]] = {
    "get_quote": ("marketdata", "GetQuote", "/v1/quotes/{symbol}", "GET"),
    "place_order": ("orders", "PlaceOrder", "/v1/orders", "POST"),
}
GRPC_METHODS = {
    "get_quote": "/trading.v1.MarketDataService/GetQuote",
    "place_order": "/trading.v1.OrderService/PlaceOrder",
}


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a live process (and of its reaped children)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # After "pid (comm)": utime, stime, cutime, cstime are fields 14-17 of the line.
    return sum(int(x) for x in fields[11:15]) / _CLOCK_TICKS


def _wait_port(host: str, port: int, timeout: float, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout:.0f} s")


@dataclass
class Floor:
    """A bare echo server (bench/floors/): grpc.aio (or `server`) or aiohttp."""

    transport: Transport
    log_dir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    tls: TlsFiles | None = None  # the floors serve plaintext only
    server: str = "grpc.aio"  # gRPC only: bench/floors/grpc_echo.py SERVERS

    @property
    def variant(self) -> str:
        return f"bare {self.server}" if self.transport == "grpc" else "bare aiohttp+orjson"

    def address(self, _service: str = "") -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Floor:
        module = "grpc_echo" if self.transport == "grpc" else "http_echo"
        command = [sys.executable, "-m", f"bench.floors.{module}", "--port", str(self.port)]
        if self.transport == "grpc":
            command += ["--server", self.server]
        name = self.transport if self.server == "grpc.aio" else self.server
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_dir / f"floor-{name}.log", "ab") as log:
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        _wait_port("127.0.0.1", self.port, 15.0, self.process)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def pids(self) -> dict[str, int]:
        assert self.process is not None
        return {"floor": self.process.pid}

    def ok_count(self, _call: str) -> int | None:
        if self.transport == "grpc":
            with grpc.insecure_channel(self.address()) as channel:
                return int(channel.unary_unary("/bench.Floor/Count")(b"", timeout=5))
        with urllib.request.urlopen(f"http://{self.address()}/count", timeout=5) as response:
            return int(json.loads(response.read())["count"])


@dataclass
class MeshDeployment:
    """One process per service on loopback, plaintext or mTLS, telemetry on or off."""

    transport: Transport
    state_dir: Path
    tls: TlsFiles | None = None  # set by start() when mTLS is on
    mtls: bool = True
    telemetry: bool = True
    mesh: LocalMesh | None = None
    certs_dir: Path | None = None
    initial_cash: int = 10**15  # no account runs out of buying power in a long run

    @property
    def variant(self) -> str:
        stack = "grpc.aio mesh" if self.transport == "grpc" else "FastAPI mesh"
        parts = [stack, "mTLS" if self.mtls else "plaintext"]
        if not self.telemetry:
            parts.append("telemetry off")
        return ", ".join(parts)

    def _env(self) -> dict[str, str]:
        env = {"TRADEMESH_RISK_INITIAL_CASH": str(self.initial_cash)}
        env["TRADEMESH_RISK_MAX_ORDER_NOTIONAL"] = str(10**15)
        env["TRADEMESH_RISK_MAX_POSITION"] = str(10**12)
        if not self.telemetry:
            env["OTEL_SDK_DISABLED"] = "true"
            for service in ("ORDERS", "RISK", "MATCHING", "MARKETDATA"):
                env[f"TRADEMESH_{service}_METRICS_PORT"] = "-1"
        return env

    def start(self) -> MeshDeployment:
        kwargs: dict[str, object] = {"etcd": False, "tls": self.mtls, "env": self._env()}
        if self.certs_dir is not None:
            kwargs["tls_dir"] = self.certs_dir
        if self.transport == "rest":
            if "protocol" not in LocalMesh.__dataclass_fields__:
                raise RuntimeError("this tree has no REST variant yet (LocalMesh(protocol=...))")
            kwargs["protocol"] = "rest"
        # Every run starts from empty service state: an earlier run's orders
        # (same workdir) would make this run's figures start on their database
        # and, with repeated client_order_ids, turn its orders into replays.
        shutil.rmtree(self.state_dir, ignore_errors=True)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.mesh = LocalMesh.on_free_ports(self.state_dir, **kwargs)  # type: ignore[arg-type]
        try:
            self.mesh.start(timeout=60.0)
        except BaseException:
            self.mesh.stop()
            raise
        if self.mtls:
            self.tls = self.mesh.client_files()
        return self

    def stop(self) -> None:
        if self.mesh is not None:
            self.mesh.stop()

    def address(self, service: str) -> str:
        assert self.mesh is not None
        return self.mesh.addresses()[service]

    def pids(self) -> dict[str, int]:
        assert self.mesh is not None
        return {key.rsplit("-", 1)[0]: p.pid for key, p in self.mesh.processes.items()}

    def ok_count(self, call: str) -> int | None:
        """Calls of `call` the serving process answered OK, from its /metrics."""
        if not self.telemetry or call not in CALLS:
            return None
        service, method, route, verb = CALLS[call]
        host, port = self.address(service).rsplit(":", 1)
        if self.transport == "grpc":
            text = _scrape(f"http://{host}:{int(port) + METRICS_OFFSET}/metrics", None)
            return _sum_samples(
                text,
                "rpc_server_requests_total",
                {"rpc_method": method, "rpc_grpc_status_code": "0"},
            )
        scheme = "https" if self.tls else "http"
        text = _scrape(f"{scheme}://{host}:{port}/metrics", self.tls)
        return _sum_samples(
            text, "http_server_requests_total", {"route": route, "method": verb}, ok_status=True
        )


def _scrape(url: str, tls: TlsFiles | None) -> str:
    context = None
    if tls is not None:
        context = ssl.create_default_context(cafile=str(tls.ca))
        context.load_cert_chain(str(tls.cert), str(tls.key))
        context.check_hostname = False  # loopback; the CA is the mesh's own
    with urllib.request.urlopen(url, timeout=5, context=context) as response:
        return response.read().decode()


def _sum_samples(text: str, name: str, labels: dict[str, str], *, ok_status: bool = False) -> int:
    """The sum of `name`'s samples matching `labels` (and a 2xx `status` label):
    0 before the first such call."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name != name:
                continue
            if any(sample.labels.get(k) != v for k, v in labels.items()):
                continue
            if ok_status and not str(sample.labels.get("status", "")).startswith("2"):
                continue
            total += sample.value
    return int(total)


@contextlib.contextmanager
def running(deployment: Floor | MeshDeployment) -> Iterator[Floor | MeshDeployment]:
    try:
        deployment.start()
        yield deployment
    finally:
        deployment.stop()


def client_tls(certs_dir: Path) -> TlsFiles:
    return TlsFiles.of(certs_dir, CLIENT_IDENTITY)


@dataclass
class DeploymentSet:
    """Several deployments up at once, so figures on them can alternate back to
    back (open loops of both transports at one rate; costs' on/off pairs). Idle
    members cost next to nothing: no etcd, no traffic."""

    parts: dict[str, Floor | MeshDeployment]

    def start(self) -> DeploymentSet:
        started: list[Floor | MeshDeployment] = []
        try:
            for part in self.parts.values():  # one by one: they share the certificates
                part.start()
                started.append(part)
        except BaseException:
            for part in started:
                part.stop()
            raise
        return self

    def stop(self) -> None:
        for part in self.parts.values():
            part.stop()
