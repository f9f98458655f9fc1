"""MeshServer on pygrpc-native (--grpc-server native): plaintext only, the runtime's
health, reflection, interceptors, tracing and load shedding kept, the pinned version
only. Skipped when pygrpc-native is not installed (the optional `native` extra, which
`make test` installs)."""

from __future__ import annotations

import asyncio
import collections
import tempfile
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.trace import SpanKind
from pydantic import ValidationError

from clients.resilience.deadline import SERVING_DEADLINE
from services.runtime import native_server
from services.runtime.server import ServiceBinding, serving, serving_server
from services.runtime.settings import ServerSettings
from services.runtime.telemetry import tracing
from trading.v1 import common_pb2, marketdata_pb2, marketdata_pb2_grpc

native_aio = pytest.importorskip("pygrpc_native.aio")

QUOTE = common_pb2.Quote(symbol="AAPL", bid_price=18_990, ask_price=19_010)


class SlowQuotes(marketdata_pb2_grpc.MarketDataServiceServicer):
    """GetQuote waits for the milliseconds named by the symbol's suffix ("X-300");
    for the symbol "deadline?" it names the serving deadline downstream calls get."""

    async def GetQuote(self, request: Any, context: Any) -> Any:
        if request.symbol == "deadline?":
            inherited = SERVING_DEADLINE.get()
            return common_pb2.Quote(symbol="none" if inherited is None else "set")
        if "-" in request.symbol:
            await asyncio.sleep(int(request.symbol.rsplit("-", 1)[1]) / 1000)
        return QUOTE


def quotes_binding() -> ServiceBinding:
    # Generated (registered) handlers: served by the native front, not its fallback.
    return ServiceBinding(
        "trading.v1.MarketDataService",
        SlowQuotes(),
        marketdata_pb2_grpc.add_MarketDataServiceServicer_to_server,
    )


def native(**fields: Any) -> ServerSettings:
    return ServerSettings(port=0, plaintext=True, grpc_server="native", **fields)


def test_native_without_plaintext_is_refused_with_a_sentence() -> None:
    with pytest.raises(ValidationError, match="plaintext only"):
        ServerSettings(port=0, grpc_server="native")


async def test_native_server_serves_calls_health_and_reflection(run_grpcurl) -> None:
    async with serving_server([quotes_binding()], native()) as server:
        assert isinstance(server.server, native_aio.Server)
        async with grpc.aio.insecure_channel(server.address) as channel:
            stub = marketdata_pb2_grpc.MarketDataServiceStub(channel)
            assert await stub.GetQuote(marketdata_pb2.GetQuoteRequest(symbol="AAPL")) == QUOTE
            health = health_pb2_grpc.HealthStub(channel)
            checked = await health.Check(
                health_pb2.HealthCheckRequest(service="trading.v1.MarketDataService")
            )
            assert checked.status == health_pb2.HealthCheckResponse.SERVING
        listed = await run_grpcurl(server.address, "list")  # reflection: the fallback server
        assert listed.returncode == 0, listed.stderr
        assert "trading.v1.MarketDataService" in listed.stdout.split()


async def test_native_server_sheds_calls_over_the_limit() -> None:
    async with (
        serving([quotes_binding()], native(max_concurrent_rpcs=2)) as address,
        grpc.aio.insecure_channel(address) as channel,
    ):
        stub = marketdata_pb2_grpc.MarketDataServiceStub(channel)
        slow = marketdata_pb2.GetQuoteRequest(symbol="AAPL-300")
        outcomes = await asyncio.gather(
            *(stub.GetQuote(slow, timeout=5) for _ in range(6)), return_exceptions=True
        )
        after = await stub.GetQuote(marketdata_pb2.GetQuoteRequest(symbol="AAPL"), timeout=5)
    results = collections.Counter(
        o.code().name if isinstance(o, grpc.aio.AioRpcError) else "ok" for o in outcomes
    )
    assert results == {"ok": 2, "RESOURCE_EXHAUSTED": 4}
    assert after == QUOTE, "finished calls leave the limit"


async def test_a_call_without_a_deadline_passes_none_downstream() -> None:
    # pygrpc-native says float(sys.maxsize) there; as a downstream timeout that
    # overflows grpc's deadline and fails the call at once.
    async with (
        serving([quotes_binding()], native()) as address,
        grpc.aio.insecure_channel(address) as channel,
    ):
        stub = marketdata_pb2_grpc.MarketDataServiceStub(channel)
        ask = marketdata_pb2.GetQuoteRequest(symbol="deadline?")
        assert (await stub.GetQuote(ask)).symbol == "none"
        assert (await stub.GetQuote(ask, timeout=5)).symbol == "set"


def test_only_the_pinned_version_is_taken() -> None:
    native_server.check_version(native_server.PINNED_VERSION)
    for other in ("0.6.0", "0.4.2"):
        with pytest.raises(OSError, match=r"written for pygrpc-native 0\.5\.0, found") as refused:
            native_server.check_version(other)
        assert "pip install -e '.[native]'" in str(refused.value)
    with pytest.raises(OSError, match=r"needs pygrpc-native 0\.5\.0: pip install"):
        native_server.check_version(None)


async def test_a_clean_stop_removes_the_fallback_socket_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fallback (reflection, client streams) listens on a Unix socket in a
    # directory pygrpc-native makes with tempfile.mkdtemp.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    async with serving([quotes_binding()], native()):
        (made,) = tmp_path.glob("pygrpc-native-*")
        assert (made / "fallback.sock").is_socket()
    assert list(tmp_path.iterdir()) == []


async def test_tracing_puts_its_server_span_around_native_calls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # instrument_grpc() is process-wide: what it patches is put back afterwards.
    for name in ("server", "insecure_channel", "secure_channel"):
        monkeypatch.setattr(grpc.aio, name, getattr(grpc.aio, name))
    monkeypatch.setattr(tracing, "_server_first", [])
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ALWAYS_ON)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.instrument_grpc(provider)
    async with (
        serving([quotes_binding()], native()) as address,
        grpc.aio.insecure_channel(address) as channel,
    ):
        stub = marketdata_pb2_grpc.MarketDataServiceStub(channel)
        assert await stub.GetQuote(marketdata_pb2.GetQuoteRequest(symbol="AAPL")) == QUOTE
    by_kind = {span.kind: span for span in exporter.get_finished_spans()}
    server_span = by_kind[SpanKind.SERVER]
    assert server_span.name == "/trading.v1.MarketDataService/GetQuote"
    assert server_span.parent is not None
    assert server_span.parent.span_id == by_kind[SpanKind.CLIENT].context.span_id
