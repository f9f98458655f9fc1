"""Starts the whole mesh on loopback, one process per service, and stops it.

`make run` uses this to bring every service up (waiting for each to report
SERVING on grpc.health.v1), run the demo, and keep serving until Ctrl-C; the
end-to-end tests use the same `Mesh` so they exercise what users run. Each
process is stopped by its own PID: SIGTERM, then SIGKILL after a timeout.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

SERVICE_ORDER = ("risk", "matching", "marketdata", "orders")  # dependencies first
DEFAULT_PORTS = {"orders": 50051, "risk": 50052, "matching": 50053, "marketdata": 50054}
HEALTH_NAMES = {
    "orders": "trading.v1.OrderService",
    "risk": "trading.v1.RiskService",
    "matching": "trading.v1.MatchingEngine",
    "marketdata": "trading.v1.MarketDataService",
}


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_serving(address: str, service: str, timeout: float) -> None:
    """Polls grpc.health.v1 Check until `service` is SERVING or time runs out."""
    deadline = time.monotonic() + timeout
    last_error = "no answer"
    with grpc.insecure_channel(address) as channel:
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


@dataclass
class ServiceProcess:
    """One service process: `python -m services.<name> --port P ...`."""

    name: str
    port: int
    args: Sequence[str] = ()
    log_path: Path | None = None
    host: str = "127.0.0.1"
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
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        finally:
            if log is not subprocess.DEVNULL:
                log.close()

    def wait_serving(self, timeout: float = 20.0) -> None:
        try:
            wait_serving(self.address, HEALTH_NAMES[self.name], timeout)
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


@dataclass
class Mesh:
    """Every trademesh service on loopback, with its state under `state_dir`."""

    state_dir: Path
    ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    grace_seconds: float = 5.0
    processes: dict[str, ServiceProcess] = field(default_factory=dict)

    def addresses(self) -> dict[str, str]:
        return {name: f"127.0.0.1:{port}" for name, port in self.ports.items()}

    def _args(self, name: str) -> list[str]:
        peers = self.addresses()
        args = ["--grace-seconds", str(self.grace_seconds)]
        if name == "orders":
            args += ["--risk-address", peers["risk"], "--matching-address", peers["matching"]]
            args += ["--db-path", str(self.state_dir / "orders.db")]
        elif name == "marketdata":
            args += ["--matching-address", peers["matching"]]
        return args

    def start(self, timeout: float = 30.0) -> None:
        logs = self.state_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        for name in SERVICE_ORDER:
            proc = ServiceProcess(name, self.ports[name], self._args(name), logs / f"{name}.log")
            self.processes[name] = proc
            proc.start()
        for proc in self.processes.values():
            proc.wait_serving(timeout)

    def stop(self) -> dict[str, int | None]:
        # The edge first, so nothing new flows down while the rest drains.
        return {
            name: self.processes[name].stop()
            for name in reversed(SERVICE_ORDER)
            if name in self.processes
        }

    @contextlib.contextmanager
    def running(self) -> Iterator[Mesh]:
        try:
            self.start()
            yield self
        finally:
            self.stop()


def grpcurl_examples(addresses: dict[str, str]) -> str:
    orders, md = addresses["orders"], addresses["marketdata"]
    order = (
        '{"account_id":"carol","client_order_id":"c-1","symbol":"AAPL","side":"SIDE_BUY",'
        '"type":"ORDER_TYPE_LIMIT","quantity":10,"price":18900}'
    )
    return "\n".join(
        [
            f"  grpcurl -plaintext {orders} list",
            f"  grpcurl -plaintext {orders} describe trading.v1.OrderService.PlaceOrder",
            f"  grpcurl -plaintext -d '{order}' {orders} trading.v1.OrderService/PlaceOrder",
            f'  grpcurl -plaintext -d \'{{"symbol":"AAPL"}}\' {md} '
            "trading.v1.MarketDataService/GetQuote",
            f'  grpcurl -plaintext -d \'{{"symbols":["AAPL"]}}\' {md} '
            "trading.v1.MarketDataService/StreamQuotes",
            f'  grpcurl -plaintext -d \'{{"service":"trading.v1.OrderService"}}\' {orders} '
            "grpc.health.v1.Health/Check",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run every trademesh service on loopback.")
    parser.add_argument("--state-dir", type=Path, default=Path("var"), help="db and logs")
    parser.add_argument("--no-demo", action="store_true", help="start the mesh only")
    args = parser.parse_args(argv)

    from clients.demo import run_demo

    mesh = Mesh(args.state_dir)
    stop = False

    def request_stop(_signum: int, _frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    print(f"starting {', '.join(SERVICE_ORDER)} (logs in {args.state_dir / 'logs'}) ...")
    with mesh.running():
        for name, address in mesh.addresses().items():
            print(f"  {name:<11} {address}  pid {mesh.processes[name].pid}")
        if not args.no_demo:
            run_demo(mesh.addresses())
        print("\nThe mesh is up. Explore it with grpcurl (`.venv/bin/grpcurl` after make install):")
        print(grpcurl_examples(mesh.addresses()))
        print("\nCtrl-C stops every service gracefully.")
        while not stop:
            time.sleep(0.2)
        print("\nstopping ...")
    print("stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
