"""MeshServer on pygrpc-native (--grpc-server native): plaintext only, the runtime's
health, reflection, interceptors and load shedding kept. Skipped when pygrpc-native
is not installed (it is not a dependency)."""

from __future__ import annotations

import asyncio
import collections
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pydantic import ValidationError

from clients.resilience.deadline import SERVING_DEADLINE
from services.runtime.server import ServiceBinding, serving, serving_server
from services.runtime.settings import ServerSettings
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
