"""The bare unary floor: grpc.aio's server against pygrpc-native's, same servicer.

    .venv/bin/python -m bench.profiles.native_floor [--rounds 3] [--seconds 5]

Both servers answer MarketDataService.GetQuote with the layers bench's constant
Quote (bench/layers.py), each in its own process on a loopback port. Two clients
load them in turn, alternating which server goes first each round so drift in
the shared machine's load falls on both:

    python  a grpc.aio channel in a separate process, closed loop of 16 calls
            (as the layers bench's client, bench/layers.py)
    h2load  nghttp2's load generator, 16 connections, one call in flight each
            (bench/drivers/h2load.py)

For each run: calls/s, p50/p99 (ms), and the server's CPU per call (user +
system of every thread, from /proc/PID/stat, divided by the calls the servicer
itself counted in the window), which other processes' load disturbs far less
than calls/s. Prints one line per run and a median per server and client, then
a JSON summary. With --mesh, the same for the runtime's MeshServer (plaintext,
metrics on) with --grpc-server grpcio and native. Needs `pip install -e
'.[native]'`; every process it starts is stopped by its PID at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import selectors
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench.drivers import h2load
from bench.layers import closed_loop, quote_servicer
from bench.measurement import summarize_latencies

SERVERS = ("grpc.aio", "pygrpc-native")
# With --mesh: the runtime's MeshServer (health, reflection, its interceptors,
# metrics on; plaintext) on each server, --grpc-server grpcio and native.
MESH_SERVERS = ("mesh-grpcio", "mesh-native")
CONCURRENCY = 16
_METHOD = "/trading.v1.MarketDataService/GetQuote"
_CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far, every thread included."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


# -- the server process ------------------------------------------------------------


async def _start_bare(kind: str, servicer: Any) -> tuple[int, Callable[[], Awaitable[Any]]]:
    """A bare grpc.aio or pygrpc-native server: its port and its stop."""
    import grpc

    from trading.v1 import marketdata_pb2_grpc

    if kind == "pygrpc-native":
        import pygrpc_native.aio

        server = pygrpc_native.aio.server()
    else:
        server = grpc.aio.server()
    marketdata_pb2_grpc.add_MarketDataServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return port, functools.partial(server.stop, 0.5)


async def _start_mesh(kind: str, servicer: Any) -> tuple[int, Callable[[], Awaitable[Any]]]:
    """MeshServer, plaintext, metrics on, on grpcio or (--grpc-server) native."""
    from discovery.local_etcd import free_port
    from services.runtime.server import MeshServer, ServiceBinding
    from services.runtime.settings import ServerSettings
    from trading.v1 import marketdata_pb2_grpc

    settings = ServerSettings(
        port=0,
        plaintext=True,
        metrics_port=free_port(),
        log_level="WARNING",
        grpc_server="native" if kind == "mesh-native" else "grpcio",
    )
    binding = ServiceBinding(
        "trading.v1.MarketDataService",
        servicer,
        marketdata_pb2_grpc.add_MarketDataServiceServicer_to_server,
    )
    mesh = MeshServer(settings, [binding])
    if kind == "mesh-native" and not type(mesh.server).__module__.startswith("pygrpc_native"):
        # Settings ignore unknown fields: without the runtime's hook this is grpcio.
        raise SystemExit("MeshServer has no --grpc-server native in this tree: drop --mesh")
    await mesh.start()
    return mesh.port, functools.partial(mesh.drain, 0.5)


async def _serve(kind: str) -> None:
    """Serves until stdin closes or SIGTERM; answers `count` with the calls served."""
    servicer = quote_servicer()
    constant = servicer.GetQuote
    served = 0

    async def counted(request: Any, context: Any) -> Any:
        nonlocal served
        served += 1
        return await constant(request, context)

    servicer.GetQuote = counted  # the generated add_*_to_server reads the attribute
    start = _start_mesh if kind in MESH_SERVERS else _start_bare
    port, stop_server = await start(kind, servicer)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    print(f"PORT {port}", flush=True)

    async def commands() -> None:
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            if line.strip() == "count":
                print(f"COUNT {served}", flush=True)
        stop.set()

    reader = asyncio.ensure_future(commands())
    await stop.wait()
    reader.cancel()
    await stop_server()


# -- the Python client process -----------------------------------------------------


async def _client(warmup: float, seconds: float) -> None:
    """For each `run <address>` line on stdin: warms up on a new grpc.aio channel,
    prints `window`, waits for a `go` line, measures, prints one JSON line. Ends
    when stdin closes."""
    import grpc

    from bench.payloads import quote_request
    from trading.v1 import marketdata_pb2_grpc

    request = quote_request()
    loop = asyncio.get_running_loop()
    while line := (await loop.run_in_executor(None, sys.stdin.readline)).strip():
        async with grpc.aio.insecure_channel(line.split()[1]) as channel:
            get_quote = marketdata_pb2_grpc.MarketDataServiceStub(channel).GetQuote
            call = functools.partial(get_quote, request, timeout=5)

            await closed_loop(call, concurrency=CONCURRENCY, seconds=warmup)
            print("window", flush=True)
            await loop.run_in_executor(None, sys.stdin.readline)  # "go": counters read
            cpu = time.process_time()
            latencies, errors, elapsed = await closed_loop(
                call, concurrency=CONCURRENCY, seconds=seconds
            )
            cpu = time.process_time() - cpu
        result = {"latencies": latencies, "errors": errors, "elapsed": elapsed, "cpu": cpu}
        print(json.dumps(result), flush=True)


# -- the orchestration -------------------------------------------------------------


class _Process:
    """A child process running this module, spoken to over its stdin/stdout."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.profiles.native_floor", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def read_line(self, timeout: float) -> str:
        """The next line of output; fails when the process ends or `timeout` passes."""
        assert self.process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            if not selector.select(timeout):
                raise TimeoutError(f"{self.process.args} said nothing for {timeout} s")
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.process.args} exited with {self.process.wait()}")
        return line.strip()

    def stop(self) -> None:
        """Closes its stdin (each role ends on that: a thread blocked reading it
        would hold a SIGTERM'd asyncio.run), then SIGTERM and SIGKILL to this
        child only, by its PID, if it is still there."""
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):  # a pipe the child left broken
                    pipe.close()
        for ending in (None, signal.SIGTERM, signal.SIGKILL):
            if ending is not None:
                self.process.send_signal(ending)
            try:
                self.process.wait(5)
                return
            except subprocess.TimeoutExpired:
                continue


def _served(server: _Process) -> int:
    server.send("count")
    return int(server.read_line(10).split()[1])


def _python_run(server: _Process, client: _Process, port: int, seconds: float) -> dict[str, Any]:
    client.send(f"run 127.0.0.1:{port}")
    assert client.read_line(seconds + 60) == "window"
    cpu, served = cpu_seconds(server.process.pid), _served(server)
    client.send("go")
    result = json.loads(client.read_line(seconds + 60))
    cpu, served = cpu_seconds(server.process.pid) - cpu, _served(server) - served
    latencies = result["latencies"]
    summary, _ = summarize_latencies(latencies)
    return {
        "calls": len(latencies),
        "errors": result["errors"],
        "calls_per_s": len(latencies) / result["elapsed"],
        "p50_ms": summary["p50"],
        "p99_ms": summary["p99"],
        "server_cpu_us_per_call": cpu / served * 1e6 if served else 0.0,
        "client_cpu_us_per_call": result["cpu"] / len(latencies) * 1e6 if latencies else 0.0,
        "served": served,
    }


def _h2load_run(server: _Process, port: int, seconds: float, workdir: Path) -> dict[str, Any]:
    from bench.payloads import quote_request

    message = quote_request().SerializeToString()
    address = f"127.0.0.1:{port}"
    h2load.grpc_unary(  # warm-up: connections, caches, the server's first calls
        address, _METHOD, message, concurrency=CONCURRENCY, duration_s=1.0, workdir=workdir
    )
    cpu, served = cpu_seconds(server.process.pid), _served(server)
    result = h2load.grpc_unary(
        address, _METHOD, message, concurrency=CONCURRENCY, duration_s=seconds, workdir=workdir
    )
    cpu, served = cpu_seconds(server.process.pid) - cpu, _served(server) - served
    return {
        # h2load counts HTTP 200s, whatever the grpc-status; the servicer's own
        # count is what the server did, so a gap between the two is reported.
        "calls": result["requests"],
        "errors": result["errors"],
        "calls_per_s": result["requests"] / result["duration_s"] if result["duration_s"] else 0.0,
        "p50_ms": result["latency_ms"]["p50"],
        "p99_ms": result["latency_ms"]["p99"],
        "server_cpu_us_per_call": cpu / served * 1e6 if served else 0.0,
        "client_cpu_us_per_call": result["generator_cpu_s"] / served * 1e6 if served else 0.0,
        "served": served,
    }


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def run(rounds: int, seconds: float, warmup: float, mesh: bool) -> dict[str, Any]:
    kinds = SERVERS + MESH_SERVERS if mesh else SERVERS
    servers = {kind: _Process("serve", kind) for kind in kinds}
    client = _Process("client", "--warmup", str(warmup), "--seconds", str(seconds))
    runs: list[dict[str, Any]] = []
    try:
        ports = {kind: int(s.read_line(60).split()[1]) for kind, s in servers.items()}
        with tempfile.TemporaryDirectory(prefix="native-floor-") as tmp:
            for n in range(rounds):
                order = kinds if n % 2 == 0 else kinds[::-1]
                for kind in order:
                    server = servers[kind]
                    for driver in ("python", "h2load"):
                        if driver == "python":
                            figures = _python_run(server, client, ports[kind], seconds)
                        else:
                            figures = _h2load_run(server, ports[kind], seconds, Path(tmp))
                        entry = {"round": n + 1, "server": kind, "client": driver, **figures}
                        runs.append(entry)
                        _print_run(entry)
    finally:
        for child in (client, *servers.values()):
            child.stop()
    medians = {}
    for kind in kinds:
        for driver in ("python", "h2load"):
            chosen = [r for r in runs if r["server"] == kind and r["client"] == driver]
            medians[f"{kind} / {driver}"] = {
                key: round(_median(chosen, key), 3)
                for key in ("calls_per_s", "p50_ms", "p99_ms", "server_cpu_us_per_call")
            }
    return {
        "load_average": os.getloadavg(),
        "rounds": rounds,
        "seconds": seconds,
        "concurrency": CONCURRENCY,
        "runs": runs,
        "medians": medians,
    }


def _print_run(entry: dict[str, Any]) -> None:
    print(
        f"round {entry['round']}  {entry['server']:<14} {entry['client']:<7}"
        f" {entry['calls_per_s']:>8.0f} calls/s  p50 {entry['p50_ms']:6.2f}"
        f"  p99 {entry['p99_ms']:6.2f} ms  server {entry['server_cpu_us_per_call']:6.1f} µs/call"
        f"  errors {entry['errors']}  served {entry['served']} (client saw {entry['calls']})",
        file=sys.stderr,
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("role", nargs="?", choices=("run", "serve", "client"), default="run")
    parser.add_argument("kind", nargs="?", choices=SERVERS + MESH_SERVERS, default="grpc.aio")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--mesh", action="store_true", help="also MeshServer on each server")
    args = parser.parse_args(argv)
    if args.role == "serve":
        asyncio.run(_serve(args.kind))
        return 0
    if args.role == "client":
        asyncio.run(_client(args.warmup, args.seconds))
        return 0
    started = time.monotonic()
    print(f"load average before: {os.getloadavg()}", file=sys.stderr)
    summary = run(args.rounds, args.seconds, args.warmup, args.mesh)
    summary["wall_s"] = round(time.monotonic() - started, 1)
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
