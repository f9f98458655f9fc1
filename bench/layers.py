"""What each layer of the mesh costs one unary call (`--scenarios layers`).

The same call, MarketDataService.GetQuote answered with a constant Quote (no
domain cost), measured with a closed loop of Python calls from a separate client
process against a separate server process, one layer at a time:

    (a) bare grpc.aio server and channel, plaintext
    (b) + the runtime's MeshServer (health, reflection, its interceptors: metrics,
        deadlines, failed-call log, domain errors), plaintext          vs (a)
    (c) + the client's MeshChannel (balancing, deadlines, retry budget,
        throttling): the mesh, plaintext                               vs (a)
    (d) bare grpc.aio server and channel over mutual TLS: TLS's own cost vs (a)
    (e) the mesh over mutual TLS, authorization on the server          vs (d)
    (f) (e) + tracing at the default sampling (1%), both sides         vs (e)
    (g) (e) + tracing sampled 100% (spans exported to a file)          vs (e)

So the mesh's overhead is (c) against (a) and (e) against (d): the mesh against a
bare call at the same transport security, TLS and tracing counted apart.

One pass is not enough on a shared machine (one variant moves +-30% from run to
run), so every process stays up and each round measures all the variants back to
back, in the opposite order every other round (as bench/scenarios/costs.py does):
a drift of the machine does not always favour one side. Each variant's share of
its baseline is taken within a round; its summary gives the median over the
rounds and their range, for throughput and for CPU per call (client + server,
which other work on the machine disturbs less than throughput).

Then each server interceptor alone is timed in-process on a real call's context
(a real mTLS server, so authorization sees a real certificate): what it adds per
call.

Process layout: one server process per server set-up (bare, with a plaintext and
an mTLS port; MeshServer plaintext; MeshServer mTLS; MeshServer mTLS with tracing,
which serves (f) and (g) since its sampler follows the caller) and one client
process per client set-up, all started at once and idle until their turn.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import IO, Any

from bench.measurement import Measurement, summarize_latencies

SCENARIO = "layers"
CONCURRENCY = 16
ROUNDS = 5  # back-to-back rounds of every variant (quick mode: 2)
_CLK_TCK = os.sysconf("SC_CLK_TCK")
_METHOD = "/trading.v1.MarketDataService/GetQuote"


@dataclass(frozen=True)
class Variant:
    key: str
    label: str
    server: str  # "bare", "mesh", "mtls", "traced"
    client: str  # "plain" (a-e, one process), "traced" (f), "traced-all" (g)
    channel: str  # "bare" or "mesh"
    tls: bool
    baseline: str | None = None  # the key of the variant its share is taken of
    mesh: bool = False  # the mesh against a bare call at the same transport security


VARIANTS = (
    Variant("a", "(a) bare grpc.aio, plaintext", "bare", "plain", "bare", False),
    Variant("b", "(b) plaintext: + MeshServer interceptors", "mesh", "plain", "bare", False, "a"),
    Variant(
        "c", "(c) plaintext: MeshServer + MeshChannel", "mesh", "plain", "mesh", False, "a", True
    ),
    Variant("d", "(d) bare grpc.aio, mTLS", "bare", "plain", "bare", True, "a"),
    Variant(
        "e", "(e) mTLS: MeshServer + MeshChannel + authz", "mtls", "plain", "mesh", True, "d", True
    ),
    Variant("f", "(f) (e) + tracing, default sampling", "traced", "traced", "mesh", True, "e"),
    Variant("g", "(g) (e) + tracing, sampled 100%", "traced", "traced-all", "mesh", True, "e"),
)
_BY_KEY = {v.key: v for v in VARIANTS}


@dataclass
class LayerMeasurement(Measurement):
    """A layers figure: one round of a variant, or (rounds set) its summary."""

    baseline: str | None = None  # the label of the variant its share is taken of
    rounds: int | None = None  # summaries: how many rounds they summarize
    share: float | None = None  # summaries: throughput / the baseline's, median of rounds
    share_range: tuple[float, float] | None = None  # ... lowest and highest round
    cpu_ratio: float | None = None  # CPU per call (client + server) / the baseline's, median
    cpu_ratio_range: tuple[float, float] | None = None
    # The same share, set on the mesh-against-bare summaries only (the target's rows).
    mesh_share: float | None = None
    mesh_share_range: tuple[float, float] | None = None


def order(round_index: int) -> tuple[Variant, ...]:
    """Even rounds (a) first, odd rounds (a) last."""
    return VARIANTS if round_index % 2 == 0 else VARIANTS[::-1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far, every thread included."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


# -- the server side ---------------------------------------------------------------


def quote_servicer() -> Any:
    from trading.v1 import common_pb2, marketdata_pb2_grpc

    quote = common_pb2.Quote(
        symbol="AAPL", bid_price=18_990, bid_quantity=100, ask_price=19_010, ask_quantity=50
    )

    class ConstantQuotes(marketdata_pb2_grpc.MarketDataServiceServicer):
        async def GetQuote(self, request: Any, context: Any) -> Any:
            return quote

    return ConstantQuotes()


async def _serve(kind: str, tls_dir: Path, trace_file: Path) -> None:
    import grpc

    from discovery.local_etcd import free_port
    from services.runtime.server import MeshServer, ServiceBinding
    from services.runtime.settings import ServerSettings
    from trading.v1 import marketdata_pb2_grpc

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    servicer = quote_servicer()
    if kind == "bare":
        # One process, two ports: plaintext and mTLS (the mesh's own server credentials).
        from services.runtime.tls import server_credentials

        server = grpc.aio.server()
        marketdata_pb2_grpc.add_MarketDataServiceServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        tls_settings = ServerSettings(port=0, tls_dir=tls_dir, identity="marketdata")
        tls_port = server.add_secure_port("127.0.0.1:0", server_credentials(tls_settings))
        await server.start()
        print(f"PORT {port} {tls_port}", flush=True)
        await stop.wait()
        await server.stop(0.5)
        return
    if kind == "traced":
        from services.runtime.telemetry.tracing import configure_tracing, shutdown_tracing

        configure_tracing("marketdata", "bench-server", trace_file)
    transport: dict[str, Any] = (
        {"plaintext": True} if kind == "mesh" else {"tls_dir": tls_dir, "identity": "marketdata"}
    )
    settings = ServerSettings(port=0, metrics_port=free_port(), log_level="WARNING", **transport)
    binding = ServiceBinding(
        "trading.v1.MarketDataService",
        servicer,
        marketdata_pb2_grpc.add_MarketDataServiceServicer_to_server,
    )
    mesh_server = MeshServer(settings, [binding])
    await mesh_server.start()
    print(f"PORT {mesh_server.port}", flush=True)
    await stop.wait()
    await mesh_server.drain(0.5)
    if kind == "traced":
        shutdown_tracing()


# -- the client side ---------------------------------------------------------------


@contextmanager
def _client_tracing(client: str, trace_file: Path) -> Iterator[None]:
    if client == "plain":
        yield
        return
    from services.runtime.telemetry.tracing import configure_tracing, shutdown_tracing

    if client == "traced-all":
        os.environ["OTEL_TRACES_SAMPLER"] = "parentbased_always_on"
    configure_tracing("bench-client", "bench-client", trace_file)
    try:
        yield
    finally:
        shutdown_tracing()


async def _open_call(
    channel_kind: str, address: str, tls_dir: Path | None
) -> tuple[Callable[[], Awaitable[Any]], Callable[[], Awaitable[None]]]:
    """The GetQuote call on a bare grpc.aio channel or a MeshChannel, and its close."""
    import grpc

    from clients.channel_options import plaintext_channel
    from clients.mesh import Mesh
    from clients.tls import SecureChannels, TlsFiles, server_name
    from clients.trading import MARKETDATA
    from trading.v1 import marketdata_pb2, marketdata_pb2_grpc

    request = marketdata_pb2.GetQuoteRequest(symbol="AAPL")
    if channel_kind == "bare":
        if tls_dir is None:
            channel = grpc.aio.insecure_channel(address)
        else:
            ca, cert, key = TlsFiles.of(tls_dir, "client").load()
            credentials = grpc.ssl_channel_credentials(ca, key, cert)
            options = [("grpc.ssl_target_name_override", server_name("marketdata"))]
            channel = grpc.aio.secure_channel(address, credentials, options)
        stub = marketdata_pb2_grpc.MarketDataServiceStub(channel)
        return (lambda: stub.GetQuote(request, timeout=5)), channel.close
    factory = SecureChannels(TlsFiles.of(tls_dir, "client")) if tls_dir else plaintext_channel
    mesh = Mesh.static({"marketdata": [address]}, channel_factory=factory)
    stub = marketdata_pb2_grpc.MarketDataServiceStub(await mesh.channel(MARKETDATA))
    return (lambda: stub.GetQuote(request, timeout=5)), mesh.close


async def closed_loop(
    call: Callable[[], Awaitable[Any]], *, concurrency: int, seconds: float
) -> tuple[list[float], int, float]:
    import grpc

    latencies: list[float] = []
    errors = 0
    stop_at = time.monotonic() + seconds

    async def worker() -> None:
        nonlocal errors
        while time.monotonic() < stop_at:
            started = time.perf_counter()
            try:
                await call()
            except grpc.aio.AioRpcError:
                errors += 1
                continue
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, errors, time.perf_counter() - started


async def _client(args: argparse.Namespace) -> None:
    """Waits for `run <channel> <tls> <address>` lines on stdin; for each, warms up,
    prints `window`, measures, and prints one JSON result line. Channels stay open
    from round to round: the first use of one warms it up longer."""
    loop = asyncio.get_running_loop()
    opened: dict[str, tuple[Callable[[], Awaitable[Any]], Callable[[], Awaitable[None]]]] = {}
    try:
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line.strip():
                return  # stdin closed: done
            _run, channel_kind, tls, address = line.split()
            warmup = args.rewarm
            if line not in opened:
                tls_dir = Path(args.tls_dir) if tls == "tls" else None
                opened[line] = await _open_call(channel_kind, address, tls_dir)
                warmup = args.warmup
            call = opened[line][0]
            await closed_loop(call, concurrency=args.concurrency, seconds=warmup)
            print("window", flush=True)
            cpu = time.process_time()
            latencies, errors, elapsed = await closed_loop(
                call, concurrency=args.concurrency, seconds=args.seconds
            )
            cpu = time.process_time() - cpu
            print(
                json.dumps(
                    {"latencies": latencies, "errors": errors, "elapsed": elapsed, "cpu": cpu}
                ),
                flush=True,
            )
    finally:
        for _call, close in opened.values():
            await close()


# -- each interceptor alone ---------------------------------------------------------

# A caller's trace context that was not sampled: what an orders -> risk hop carries
# at the default sampling.
_UNSAMPLED_PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"


def _providers() -> dict[str, Any]:
    """Tracer providers as a serving process has them: the default sampler, and
    everything sampled with spans handed to a batch exporter that drops them."""
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON

    from services.runtime.telemetry.tracing import build_tracer_provider

    class Drop(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    sampled = build_tracer_provider("bench", "bench", sampler=ALWAYS_ON)
    sampled.add_span_processor(BatchSpanProcessor(Drop()))
    return {"unsampled": build_tracer_provider("bench", "bench"), "sampled": sampled}


def _server_interceptors(providers: dict[str, Any]) -> dict[str, Any]:
    from opentelemetry.instrumentation.grpc import aio_server_interceptor

    from services.runtime.authz_policy import AuthzPolicy
    from services.runtime.interceptors.authz import AuthzInterceptor
    from services.runtime.interceptors.call_log import FailedCallLogInterceptor
    from services.runtime.interceptors.chain import ChainInterceptor
    from services.runtime.interceptors.deadline import DeadlineInterceptor
    from services.runtime.interceptors.domain_errors import DomainErrorInterceptor
    from services.runtime.interceptors.metrics import MetricsInterceptor
    from services.runtime.telemetry.grpc_spans import ServerSpans
    from services.runtime.telemetry.metrics import ServerMetrics
    from services.runtime.telemetry.tracing import is_traced

    found: dict[str, Any] = {
        # What MeshServer runs: every concern folded into one wrapper per method.
        "server ChainInterceptor, plaintext (all but authz)": ChainInterceptor(ServerMetrics().rpc),
        "server ChainInterceptor, mTLS (all)": ChainInterceptor(
            ServerMetrics().rpc, AuthzPolicy.load()
        ),
        # Each concern alone, as its one-concern interceptor.
        "server MetricsInterceptor": MetricsInterceptor(ServerMetrics().rpc),
        "server AuthzInterceptor": AuthzInterceptor(AuthzPolicy.load()),
        "server DeadlineInterceptor": DeadlineInterceptor(),
        "server FailedCallLogInterceptor": FailedCallLogInterceptor(),
        "server DomainErrorInterceptor": DomainErrorInterceptor(),
    }
    for sampling, provider in providers.items():
        found[f"server tracing, stock OTel, {sampling}"] = aio_server_interceptor(
            tracer_provider=provider, filter_=is_traced
        )
        found[f"server tracing, ServerSpans, {sampling}"] = ServerSpans(provider)
    return found


def _client_interceptors(providers: dict[str, Any], finished: Any) -> dict[str, Any]:
    """Each client-side tracer as a call(details, request) that ends in `finished`."""
    from opentelemetry.instrumentation.grpc import aio_client_interceptors

    from services.runtime.telemetry.grpc_spans import ClientSpans
    from services.runtime.telemetry.tracing import is_traced

    async def continuation(_details: Any, _request: Any) -> Any:
        return finished

    class Finished:  # a channel whose every call is `finished`
        def unary_unary(self, *_args: Any) -> Any:
            return lambda _request, **_options: finished

    found: dict[str, Any] = {}
    for sampling, provider in providers.items():
        stock = aio_client_interceptors(tracer_provider=provider, filter_=is_traced)[0]
        found[f"client tracing, stock OTel, {sampling}"] = functools.partial(
            stock.intercept_unary_unary, continuation
        )
        lean = ClientSpans(provider).instrument(Finished()).unary_unary(_METHOD)  # type: ignore[arg-type]

        async def call(details: Any, request: Any, lean: Any = lean) -> Any:
            return lean(request, timeout=details.timeout)  # the call, as an interceptor gives it

        found[f"client tracing, ClientSpans, {sampling}"] = call
    return found


async def _best_per_call(run: Callable[[], Awaitable[Any]], calls: int) -> float:
    """µs per `run()`, the best of 3 rounds of `calls` (noise only adds time)."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(calls):
            await run()
        best = min(best, (time.perf_counter() - started) / calls)
    return best * 1e6


async def _interceptor_costs(tls_dir: Path, calls: int) -> dict[str, float]:
    """µs each interceptor adds to a call, timed in-process on real calls.

    Server side: its intercept_service (the per-call lookup grpc makes) plus its
    wrapper around a behaviour that returns at once, on the context of a real
    mTLS call that carries an unsampled trace context. Client side: its own
    work (the stock intercept_unary_unary, or ClientSpans' multicallable) around
    a call that hands back a finished real call, under an unsampled current span
    (a hop made while serving). Not counted: what grpc's interceptor path itself
    adds to a channel with any unary interceptor (bench/profiles/tracing.md)."""
    import grpc
    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    from clients.tls import TlsFiles, server_name
    from services.runtime.settings import ServerSettings
    from services.runtime.tls import server_credentials
    from trading.v1 import marketdata_pb2, marketdata_pb2_grpc

    providers = _providers()
    captured: dict[str, Any] = {}
    costs: dict[str, float] = {}

    class Capture(grpc.aio.ServerInterceptor):
        async def intercept_service(self, continuation: Any, details: Any) -> Any:
            captured["details"] = details
            return await continuation(details)

    async def returns_at_once(request: Any, context: Any) -> Any:
        return request

    class Timing(marketdata_pb2_grpc.MarketDataServiceServicer):
        async def GetQuote(self, request: Any, context: Any) -> Any:
            if request.symbol != "time":
                return marketdata_pb2.GetQuoteRequest()
            details = captured["details"]
            handler = grpc.unary_unary_rpc_method_handler(returns_at_once)

            async def continuation(_details: Any) -> Any:
                return handler

            baseline = await _best_per_call(lambda: returns_at_once(request, context), calls)
            for name, interceptor in _server_interceptors(providers).items():

                async def one(interceptor: Any = interceptor) -> Any:
                    wrapped = await interceptor.intercept_service(continuation, details)
                    return await wrapped.unary_unary(request, context)

                costs[name] = round(await _best_per_call(one, calls) - baseline, 2)
            return marketdata_pb2.GetQuoteRequest()

    settings = ServerSettings(port=0, tls_dir=tls_dir, identity="marketdata")
    server = grpc.aio.server(interceptors=[Capture()])
    marketdata_pb2_grpc.add_MarketDataServiceServicer_to_server(Timing(), server)
    port = server.add_secure_port("127.0.0.1:0", server_credentials(settings))
    await server.start()
    ca, cert, key = TlsFiles.of(tls_dir, "client").load()
    credentials = grpc.ssl_channel_credentials(ca, key, cert)
    options = [("grpc.ssl_target_name_override", server_name("marketdata"))]
    try:
        async with grpc.aio.secure_channel(f"127.0.0.1:{port}", credentials, options) as channel:
            stub = marketdata_pb2_grpc.MarketDataServiceStub(channel)
            metadata = (("traceparent", _UNSAMPLED_PARENT),)
            await stub.GetQuote(
                marketdata_pb2.GetQuoteRequest(symbol="time"), timeout=120, metadata=metadata
            )
            # The client side: a finished real call stands for the network.
            request = marketdata_pb2.GetQuoteRequest(symbol="AAPL")
            finished = stub.GetQuote(request, timeout=5)
            await finished
            details = grpc.aio.ClientCallDetails(_METHOD.encode(), 5.0, None, None, None)

            async def call_continuation(_details: Any, _request: Any) -> Any:
                return finished

            parent = NonRecordingSpan(
                SpanContext(0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, True,
                            TraceFlags(0))
            )  # fmt: skip
            token = otel_context.attach(trace.set_span_in_context(parent))
            try:
                baseline = await _best_per_call(lambda: call_continuation(details, request), calls)
                for name, traced in _client_interceptors(providers, finished).items():

                    async def one(traced: Any = traced) -> Any:
                        return await traced(details, request)

                    costs[name] = round(await _best_per_call(one, calls) - baseline, 2)
            finally:
                otel_context.detach(token)
    finally:
        await server.stop(0)
        for provider in providers.values():
            provider.shutdown()
    return costs


# -- the orchestration -------------------------------------------------------------


class _Child:
    """One helper process of this module, spoken to over its stdin/stdout."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.layers", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )

    @property
    def stdout(self) -> IO[str]:
        assert self.process.stdout is not None
        return self.process.stdout

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def read_line(self, timeout: float) -> str:
        """The next line of output; fails when the process ends or `timeout` passes."""
        import selectors

        with selectors.DefaultSelector() as selector:
            selector.register(self.stdout, selectors.EVENT_READ)
            if not selector.select(timeout):
                raise TimeoutError(f"{self.process.args} said nothing for {timeout} s")
        line = self.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.process.args} exited with {self.process.wait()}")
        return line.strip()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):  # a pipe the child left broken
                    pipe.close()


def run_layers(
    *, quick: bool, progress: Callable[[str], None], rounds: int | None = None
) -> list[Measurement]:
    """Each round's figure of every variant, each variant's summary over the rounds,
    then one figure per interceptor alone."""
    from services.runtime.certs import ensure_certs

    warmup, rewarm, seconds = (0.3, 0.1, 0.4) if quick else (1.0, 0.3, 2.0)
    rounds = rounds or (2 if quick else ROUNDS)
    with tempfile.TemporaryDirectory(prefix="trademesh-layers-") as tmp:
        tls_dir = Path(tmp) / "certs"
        ensure_certs(tls_dir)
        common = ["--tls-dir", str(tls_dir)]
        # Each process chooses its own tracing, whatever the caller's environment says.
        env = {"OTEL_TRACES_SAMPLER": "", "OTEL_SDK_DISABLED": "false"}
        servers: dict[str, _Child] = {}
        clients: dict[str, _Child] = {}
        measured: list[dict[str, LayerMeasurement]] = []
        try:
            progress("layers: starting the servers and clients")
            for kind in ("bare", "mesh", "mtls", "traced"):
                trace = ["--trace-file", str(Path(tmp) / f"server-{kind}.jsonl")]
                servers[kind] = _Child("serve", kind, *common, *trace, env=env)
            client_args = [
                *common,
                *("--concurrency", str(CONCURRENCY)),
                *("--warmup", str(warmup), "--rewarm", str(rewarm), "--seconds", str(seconds)),
            ]
            for kind in ("plain", "traced", "traced-all"):
                trace = ["--trace-file", str(Path(tmp) / f"client-{kind}.jsonl")]
                clients[kind] = _Child("client", kind, *client_args, *trace, env=env)
            ports = {kind: s.read_line(60).split()[1:] for kind, s in servers.items()}
            for r in range(rounds):
                progress(f"layers: round {r + 1} of {rounds}")
                found: dict[str, LayerMeasurement] = {}
                for variant in order(r):
                    server, client = servers[variant.server], clients[variant.client]
                    port = ports[variant.server][
                        1 if variant.tls and variant.server == "bare" else 0
                    ]
                    found[variant.key] = _measure(variant, server, client, port, seconds, r)
                measured.append(found)
        finally:
            for child in (*clients.values(), *servers.values()):
                child.stop()
        progress("layers: each interceptor alone")
        calls = 2_000 if quick else 20_000
        costs = asyncio.run(_interceptor_costs(tls_dir, calls))
    per_round = [found[v.key] for found in measured for v in VARIANTS]
    return [
        *per_round,
        *summaries(measured),
        *(_interceptor_measurement(name, us, calls) for name, us in costs.items()),
    ]


def _cpu_per_call(m: Measurement) -> float | None:
    """Client + server CPU per call, in seconds."""
    if not m.requests or m.generator_cpu_s is None:
        return None
    return (m.generator_cpu_s + sum(m.server_cpu_s.values())) / m.requests


def _median_range(values: list[float]) -> tuple[float | None, tuple[float, float] | None]:
    if not values:
        return None, None
    return median(values), (min(values), max(values))


def summaries(measured: list[dict[str, LayerMeasurement]]) -> list[LayerMeasurement]:
    """One figure per variant over the rounds: medians of its figures, and the median
    and range of its per-round shares of its baseline (same round)."""
    found = []
    for variant in VARIANTS:
        figures = [r[variant.key] for r in measured if variant.key in r]
        if not figures:
            continue
        shares: list[float] = []
        cpu_ratios: list[float] = []
        if variant.baseline is not None:
            for r in measured:
                m, base = r.get(variant.key), r.get(variant.baseline)
                if m is None or base is None:
                    continue
                if m.throughput_rps and base.throughput_rps:
                    shares.append(m.throughput_rps / base.throughput_rps)
                cpu, base_cpu = _cpu_per_call(m), _cpu_per_call(base)
                if cpu and base_cpu:
                    cpu_ratios.append(cpu / base_cpu)
        share, share_range = _median_range(shares)
        cpu_ratio, cpu_range = _median_range(cpu_ratios)
        requests = sum(m.requests for m in figures)
        server_cpu = sum(sum(m.server_cpu_s.values()) for m in figures)
        client_cpu = sum(m.generator_cpu_s or 0.0 for m in figures)
        baseline = _BY_KEY[variant.baseline].label if variant.baseline else None
        found.append(
            LayerMeasurement(
                scenario=SCENARIO,
                transport="grpc",
                variant=variant.label,
                driver="python-grpc",
                load="closed",
                concurrency=CONCURRENCY,
                target_rate=None,
                duration_s=sum(m.duration_s for m in figures),
                requests=requests,
                errors=sum(m.errors for m in figures),
                throughput_rps=median(m.throughput_rps for m in figures),
                latency_ms={
                    p: median(m.latency_ms.get(p, 0.0) for m in figures)
                    for p in ("p50", "p90", "p99", "p99.9")
                },
                generator_cpu_s=client_cpu,
                server_cpu_s={"server": server_cpu},
                notes=f"medians of {len(figures)} rounds; server CPU "
                f"{server_cpu / requests * 1e6 if requests else 0:.0f} µs/call, client CPU "
                f"{client_cpu / requests * 1e6 if requests else 0:.0f} µs/call",
                baseline=baseline,
                rounds=len(figures),
                share=share,
                share_range=share_range,
                cpu_ratio=cpu_ratio,
                cpu_ratio_range=cpu_range,
                mesh_share=share if variant.mesh else None,
                mesh_share_range=share_range if variant.mesh else None,
            )
        )
    return found


def _measure(
    variant: Variant, server: _Child, client: _Child, port: str, seconds: float, round_index: int
) -> LayerMeasurement:
    tls = "tls" if variant.tls else "plain"
    client.send(f"run {variant.channel} {tls} 127.0.0.1:{port}")
    window = client.read_line(seconds + 60)
    assert window == "window", window
    cpu_before = cpu_seconds(server.process.pid)
    result = json.loads(client.read_line(seconds + 60))
    server_cpu = cpu_seconds(server.process.pid) - cpu_before
    latencies: list[float] = result["latencies"]
    summary, curve = summarize_latencies(latencies)
    calls = len(latencies)
    per_call = server_cpu / calls * 1e6 if calls else 0.0
    return LayerMeasurement(
        scenario=SCENARIO,
        transport="grpc",
        variant=variant.label,
        driver="python-grpc",
        load="closed",
        concurrency=CONCURRENCY,
        target_rate=None,
        duration_s=result["elapsed"],
        requests=calls,
        errors=result["errors"],
        throughput_rps=calls / result["elapsed"] if result["elapsed"] else 0.0,
        latency_ms=summary,
        latency_curve=curve,
        generator_cpu_s=result["cpu"],
        server_cpu_s={"server": server_cpu},
        notes=f"round {round_index + 1}; server CPU {per_call:.0f} µs/call, client CPU "
        f"{result['cpu'] / calls * 1e6 if calls else 0:.0f} µs/call",
        round=round_index,
        baseline=_BY_KEY[variant.baseline].label if variant.baseline else None,
    )


def _interceptor_measurement(name: str, micros: float, calls: int) -> Measurement:
    return Measurement(
        scenario=SCENARIO,
        transport="grpc",
        variant=f"interceptor: {name}",
        driver="in-process",
        load="closed",
        concurrency=1,
        target_rate=None,
        duration_s=0.0,
        requests=calls,
        errors=0,
        throughput_rps=1e6 / micros if micros > 0 else 0.0,
        latency_ms={"mean": micros / 1000},
        notes=f"adds {micros:.2f} µs per call (in-process, best of 3 x {calls} calls)",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("role", choices=("serve", "client", "run"))
    parser.add_argument("kind", nargs="?", default="")
    parser.add_argument("--tls-dir", type=Path, default=Path("certs"))
    parser.add_argument("--trace-file", type=Path, default=Path(os.devnull))
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--rewarm", type=float, default=0.3)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.role == "serve":
        asyncio.run(_serve(args.kind, args.tls_dir, args.trace_file))
    elif args.role == "client":
        with _client_tracing(args.kind, args.trace_file):
            asyncio.run(_client(args))
    else:
        measured = run_layers(
            quick=args.quick, progress=lambda s: print(s, file=sys.stderr), rounds=args.rounds
        )
        for m in measured:
            if isinstance(m, LayerMeasurement) and m.round is not None:
                continue  # every round is in the summaries
            print(_line(m))
    return 0


def _line(m: Measurement) -> str:
    """One figure, for the terminal."""
    if not isinstance(m, LayerMeasurement):
        return f"{m.variant:<48} {m.notes}"
    text = f"{m.variant:<48} {m.throughput_rps:>7.0f}/s  p99 {m.latency_ms.get('p99', 0):5.2f} ms"
    text += f"  errors {m.errors}"
    if m.share is not None and m.share_range and m.cpu_ratio and m.cpu_ratio_range:
        low, high = m.share_range
        text += f"  {m.share:.0%} ({low:.0%}-{high:.0%}) of {(m.baseline or '')[:3]}"
        low, high = m.cpu_ratio_range
        text += f", CPU/call {m.cpu_ratio:.2f}x ({low:.2f}-{high:.2f})"
    return text + f"  {m.notes}"


if __name__ == "__main__":
    sys.exit(main())
