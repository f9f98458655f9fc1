"""A bounded PlaceOrder load on a local mesh, with py-spy profiles of the services.

    .venv/bin/python -m bench.profiles.place_order_load --tls --label before-mtls

Starts one process per service (no etcd: static peers, free loopback ports),
places a fixed number of orders from many accounts at crossing prices (so about
half of them trade) with a closed loop of `--concurrency` calls in flight, and
while the measured part runs records each service with `py-spy record` (speedscope
JSON under var/profiles/<label>/) and reads each process's CPU time from /proc.
Prints one JSON summary: orders/s, latency percentiles, errors by code, CPU
µs/order per process, and the profile breakdown of bench/profiles/breakdown.py.

With `--batch B` the same orders go through OrderEntry instead: `--concurrency`
bidi streams, each with one batch of B orders in flight (latencies per batch).
With `--rest` every service serves HTTP/JSON (FastAPI) instead and the same
orders go to POST /v1/orders (POST /v1/orders:batch with `--batch`) over one
aiohttp session with a keep-alive connection per call in flight, so the two
transports' CPU per order and profiles compare process by process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import orjson
from google.rpc import code_pb2

from bench.measurement import summarize_latencies
from bench.profiles.breakdown import breakdown
from clients.tls import server_name
from services.launcher import SERVICE_ORDER, LocalMesh
from trading.v1 import common_pb2, orders_pb2, orders_pb2_grpc

PROFILED = ("orders", "risk", "matching")
_CLK_TCK = os.sysconf("SC_CLK_TCK")
METRICS_PORT_OFFSET = 1000  # services.runtime.telemetry.metrics: /metrics at port + 1000
# The server-side request counters: gRPC by method, REST by route and HTTP method.
_REQUEST_COUNTERS = ("rpc_server_requests_total{", "http_server_requests_total{")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of one process so far (its threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


@dataclass
class OrderFlow:
    """Orders from `accounts` accounts around one price: buys and sells whose
    limits overlap, so most of them cross something resting."""

    accounts: int = 500
    symbol: str = "AAPL"
    mid: int = 10_000
    seed: int = 7

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self._next = 0

    def next(self, run: str) -> orders_pb2.PlaceOrderRequest:
        n, self._next = self._next, self._next + 1
        rnd = self._random
        side = common_pb2.SIDE_BUY if n % 2 else common_pb2.SIDE_SELL
        return orders_pb2.PlaceOrderRequest(
            account_id=f"acct-{rnd.randrange(self.accounts)}",
            client_order_id=f"{run}-{n}",
            symbol=self.symbol,
            side=side,
            type=common_pb2.ORDER_TYPE_LIMIT,
            quantity=rnd.randint(1, 10),
            price=self.mid + rnd.randint(-5, 5),
        )


def metrics_url(mesh: LocalMesh, name: str) -> str:
    """Where a service serves /metrics: a port of its own beside a gRPC server,
    the server's own port (over its TLS) for REST."""
    port = mesh.port_of(name, 0)
    if mesh.protocol == "rest":
        return f"{'https' if mesh.tls else 'http'}://127.0.0.1:{port}/metrics"
    return f"http://127.0.0.1:{port + METRICS_PORT_OFFSET}/metrics"


def client_tls(mesh: LocalMesh) -> ssl.SSLContext | None:
    """The external client's mTLS context (REST), None for plaintext."""
    if not mesh.tls:
        return None
    files = mesh.client_files()
    context = ssl.create_default_context(cafile=str(files.ca))
    context.load_cert_chain(str(files.cert), str(files.key))
    context.check_hostname = False  # /metrics is read by address, not service name
    return context


def served_calls(url: str, tls: ssl.SSLContext | None) -> Counter[str]:
    """Calls one process has served so far, by method (gRPC) or route (REST),
    read from its /metrics."""
    with urllib.request.urlopen(url, timeout=5, context=tls) as response:
        text = response.read().decode()
    calls: Counter[str] = Counter()
    for line in text.splitlines():
        if not line.startswith(_REQUEST_COUNTERS):
            continue
        labels, value = line.rsplit(" ", 1)
        fields = dict(part.split("=", 1) for part in labels[labels.index("{") + 1 : -1].split(","))
        name = fields.get("rpc_method") or f"{fields.get('method')} {fields.get('route')}"
        calls[name.strip('"').replace('" "', " ").replace('"', "")] += int(float(value))
    return calls


PlaceBatch = Callable[[list[orders_pb2.PlaceOrderRequest]], Awaitable[list[str]]]


class GrpcOrders:
    """PlaceOrder and OrderEntry on one grpc.aio channel; outcomes as code names."""

    def __init__(self, mesh: LocalMesh) -> None:
        address = mesh.addresses()["orders"]
        if mesh.tls:
            ca, cert, key = mesh.client_files().load()
            credentials = grpc.ssl_channel_credentials(ca, key, cert)
            options = [("grpc.ssl_target_name_override", server_name("orders"))]
            self._channel = grpc.aio.secure_channel(address, credentials, options=options)
        else:
            self._channel = grpc.aio.insecure_channel(address)
        self._stub = orders_pb2_grpc.OrderServiceStub(self._channel)

    async def close(self) -> None:
        await self._channel.close()

    async def place(self, request: orders_pb2.PlaceOrderRequest) -> str:
        try:
            await self._stub.PlaceOrder(request, timeout=5)
        except grpc.aio.AioRpcError as err:
            return str(err.code().name)
        return "OK"

    @asynccontextmanager
    async def batches(self, seconds: float) -> AsyncIterator[PlaceBatch]:
        """One OrderEntry stream, one batch in flight on it at a time."""
        call = self._stub.OrderEntry(timeout=seconds + 30)
        batch_id = 0

        async def send(orders: list[orders_pb2.PlaceOrderRequest]) -> list[str]:
            nonlocal batch_id
            batch_id += 1
            await call.write(orders_pb2.OrderEntryRequest(batch_id=batch_id, orders=orders))
            reply = await call.read()
            return [
                "OK" if r.WhichOneof("outcome") == "placed" else code_pb2.Code.Name(r.error.code)
                for r in reply.results
            ]

        yield send
        await call.done_writing()
        assert await call.code() is grpc.StatusCode.OK, await call.details()


class RestOrders:
    """POST /v1/orders and /v1/orders:batch on one aiohttp session (a keep-alive
    connection per call in flight); outcomes as code names ("HTTP n" for errors)."""

    def __init__(self, mesh: LocalMesh) -> None:
        tls: ssl.SSLContext | bool = False
        self._hostname: str | None = None
        if mesh.tls:
            files = mesh.client_files()
            tls = ssl.create_default_context(cafile=str(files.ca))
            tls.load_cert_chain(str(files.cert), str(files.key))
            self._hostname = server_name("orders")
        self._base = f"{'https' if mesh.tls else 'http'}://{mesh.addresses()['orders']}"
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, ssl=tls),
            timeout=aiohttp.ClientTimeout(total=30),
        )

    async def close(self) -> None:
        await self._session.close()

    async def _post(self, path: str, body: Any) -> tuple[int, Any]:
        async with self._session.post(
            self._base + path,
            data=orjson.dumps(body),
            headers={"content-type": "application/json"},
            server_hostname=self._hostname,
        ) as response:
            return response.status, orjson.loads(await response.read())

    async def place(self, request: orders_pb2.PlaceOrderRequest) -> str:
        status, _body = await self._post("/v1/orders", _json_order(request))
        return "OK" if status == 200 else f"HTTP {status}"

    @asynccontextmanager
    async def batches(self, seconds: float) -> AsyncIterator[PlaceBatch]:
        async def send(orders: list[orders_pb2.PlaceOrderRequest]) -> list[str]:
            status, body = await self._post(
                "/v1/orders:batch", {"orders": [_json_order(o) for o in orders]}
            )
            if status != 200:
                return [f"HTTP {status}"] * len(orders)
            return [
                "OK" if "placed" in r else code_pb2.Code.Name(r["error"]["code"])
                for r in body["results"]
            ]

        yield send


def _json_order(request: orders_pb2.PlaceOrderRequest) -> dict[str, Any]:
    """The REST body of one order: proto field names, enums by name."""
    return {
        "account_id": request.account_id,
        "client_order_id": request.client_order_id,
        "symbol": request.symbol,
        "side": common_pb2.Side.Name(request.side),
        "type": common_pb2.OrderType.Name(request.type),
        "time_in_force": common_pb2.TimeInForce.Name(request.time_in_force),
        "quantity": request.quantity,
        "price": request.price,
    }


Orders = GrpcOrders | RestOrders


async def closed_loop(
    client: Orders,
    flow: OrderFlow,
    run: str,
    *,
    orders: int,
    concurrency: int,
    deadline_s: float,
) -> tuple[list[float], Counter[str], float]:
    """`orders` calls (fewer if `deadline_s` passes first), `concurrency` at a time.
    Returns latencies (ms), outcomes by code and the elapsed seconds."""
    latencies: list[float] = []
    codes: Counter[str] = Counter()
    remaining = orders
    stop_at = time.monotonic() + deadline_s

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0 and time.monotonic() < stop_at:
            remaining -= 1
            request = flow.next(run)
            started = time.perf_counter()
            codes[await client.place(request)] += 1
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, codes, time.perf_counter() - started


async def batch_loop(
    client: Orders,
    flow: OrderFlow,
    run: str,
    *,
    orders: int,
    batch: int,
    streams: int,
    deadline_s: float,
) -> tuple[list[float], Counter[str], float]:
    """OrderEntry (or POST /v1/orders:batch): `streams` workers, each sending a
    batch of `batch` orders and waiting for its answer before the next, until
    `orders` are placed or `deadline_s` passes. Returns latencies per batch (ms),
    per-order outcomes by code and the elapsed seconds."""
    latencies: list[float] = []
    codes: Counter[str] = Counter()
    remaining = orders
    stop_at = time.monotonic() + deadline_s

    async def worker() -> None:
        nonlocal remaining
        async with client.batches(deadline_s) as send:
            while remaining > 0 and time.monotonic() < stop_at:
                size = min(batch, remaining)
                remaining -= size
                requests = [flow.next(run) for _ in range(size)]
                started = time.perf_counter()
                codes.update(await send(requests))
                latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(streams)))
    return latencies, codes, time.perf_counter() - started


def start_profilers(
    mesh: LocalMesh, out_dir: Path, seconds: float, rate: int, *, native: bool
) -> list[subprocess.Popen[bytes]]:
    py_spy = shutil.which("py-spy", path=os.path.dirname(sys.executable)) or "py-spy"
    procs = []
    for name in PROFILED:
        pid = mesh.processes[f"{name}-0"].pid
        command = [
            py_spy, "record", "--pid", str(pid), "--duration", str(int(seconds)),
            "--rate", str(rate), "--format", "speedscope",
            "--output", str(out_dir / f"{name}.speedscope.json"),
        ]  # fmt: skip
        # --native: C frames too (grpc's Cython core, sqlite), which needs the
        # process paused for each sample; otherwise sample without pausing it.
        command.append("--native" if native else "--nonblocking")
        with open(out_dir / f"{name}.py-spy.log", "wb") as log:
            procs.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT))
    return procs


async def measure(args: argparse.Namespace, mesh: LocalMesh, out_dir: Path) -> dict[str, Any]:
    flow = OrderFlow(accounts=args.accounts)
    client: Orders = RestOrders(mesh) if mesh.protocol == "rest" else GrpcOrders(mesh)
    try:
        # Warm-up: connections, first-call caches, a book with depth on both sides.
        await closed_loop(
            client, flow, "warm", orders=args.warmup, concurrency=args.concurrency, deadline_s=30
        )
        if args.batch:
            # The same warm-up through OrderEntry, so its stream path is warm too.
            await batch_loop(
                client, flow, "warm-b", orders=args.warmup, batch=args.batch,
                streams=args.concurrency, deadline_s=30,
            )  # fmt: skip
        pids = {name: mesh.processes[f"{name}-0"].pid for name in SERVICE_ORDER}
        profilers = (
            start_profilers(mesh, out_dir, args.seconds + 60, args.rate, native=args.native)
            if args.profile
            else []
        )
        if profilers:
            await asyncio.sleep(1.0)  # py-spy attaches before the window opens
        urls = {name: metrics_url(mesh, name) for name in ("risk", "matching")}
        tls = client_tls(mesh)
        calls_before = {name: served_calls(url, tls) for name, url in urls.items()}
        cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        if args.batch:
            latencies, codes, elapsed = await batch_loop(
                client, flow, "run", orders=args.orders, batch=args.batch,
                streams=args.concurrency, deadline_s=args.seconds,
            )  # fmt: skip
            done = codes.total()
        else:
            latencies, codes, elapsed = await closed_loop(
                client, flow, "run", orders=args.orders, concurrency=args.concurrency,
                deadline_s=args.seconds,
            )  # fmt: skip
            done = len(latencies)
        cpu_after = {name: cpu_seconds(pid) for name, pid in pids.items()}
        calls_after = {name: served_calls(url, tls) for name, url in urls.items()}
    finally:
        await client.close()
    for proc in profilers:  # SIGINT: py-spy stops sampling and writes its file
        proc.send_signal(signal.SIGINT)
    for proc in profilers:
        proc.wait(timeout=30)
    summary, _curve = summarize_latencies(latencies)
    cpu = {name: cpu_after[name] - cpu_before[name] for name in pids}
    result: dict[str, Any] = {
        "label": args.label,
        "tls": mesh.tls,
        "protocol": mesh.protocol,
        "env": dict(mesh.env),
        "concurrency": args.concurrency,
        "batch": args.batch,  # 0: PlaceOrder; else OrderEntry batches (latency per batch)
        "orders": done,
        "seconds": round(elapsed, 3),
        "orders_per_s": round(done / elapsed, 1),
        "latency_ms": {k: round(v, 3) for k, v in summary.items()},
        "codes": dict(codes),
        "cpu_us_per_order": {name: round(s / done * 1e6, 1) for name, s in cpu.items()},
        # Calls risk and matching served per order placed, by method.
        "calls_per_order": {
            name: {
                method: round(count / done, 3)
                for method, count in (calls_after[name] - calls_before[name]).items()
            }
            for name in urls
        },
    }
    if profilers:
        result["profiles"] = {
            name: breakdown(out_dir / f"{name}.speedscope.json", top=args.top) for name in PROFILED
        }
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--label", default="run", help="names var/profiles/<label>/")
    parser.add_argument("--tls", action="store_true", help="mTLS between every hop")
    parser.add_argument(
        "--rest", action="store_true", help="every service on HTTP/JSON (FastAPI), not gRPC"
    )
    parser.add_argument("--orders", type=int, default=4_000, help="orders in the window")
    parser.add_argument("--seconds", type=float, default=20.0, help="the window's time bound")
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument(
        "--concurrency", type=int, default=32, help="calls in flight (streams with --batch)"
    )
    parser.add_argument(
        "--batch", type=int, default=0, help="orders per OrderEntry batch (0: unary PlaceOrder)"
    )
    parser.add_argument("--accounts", type=int, default=500)
    parser.add_argument("--no-profile", dest="profile", action="store_false")
    parser.add_argument("--native", action="store_true", help="py-spy --native")
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=25, help="functions listed per process")
    parser.add_argument(
        "--env", action="append", default=[], help="KEY=VALUE for every service process"
    )
    args = parser.parse_args()
    out_dir = Path("var/profiles") / args.label
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    env = dict(item.split("=", 1) for item in args.env)
    mesh = LocalMesh.on_free_ports(
        out_dir / "mesh",
        etcd=False,
        instances=dict.fromkeys(SERVICE_ORDER, 1),
        tls=args.tls,
        env=env,
        protocol="rest" if args.rest else "grpc",
    )
    with mesh.running():
        result = asyncio.run(measure(args, mesh, out_dir))
    (out_dir / "summary.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
