"""Helpers shared by the market-data tests: a real matching engine on loopback."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from services.instruments import DEFAULT_INSTRUMENTS, InstrumentCatalog
from services.matching.engine import MatchingEngine
from services.matching.grpc_adapter import MatchingEngineServicer
from services.model import OrderType, Side, TimeInForce
from services.runtime.server import ServiceBinding, serving
from services.runtime.settings import ServerSettings
from trading.v1 import matching_pb2_grpc

CATALOG = InstrumentCatalog(DEFAULT_INSTRUMENTS)


async def eventually(predicate: Callable[[], bool], timeout: float = 2.0) -> None:
    """Waits until `predicate()` holds, polling briefly; fails after `timeout`."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.005)


@asynccontextmanager
async def matching_engine(port: int = 0) -> AsyncIterator[tuple[str, MatchingEngine]]:
    """A real MatchingEngine server (full runtime) on 127.0.0.1; yields its
    address and the engine, to submit orders without a client."""
    engine = MatchingEngine(CATALOG, engine_id="test-engine")
    binding = ServiceBinding(
        "trading.v1.MatchingEngine",
        MatchingEngineServicer(engine),
        matching_pb2_grpc.add_MatchingEngineServicer_to_server,
    )
    async with serving([binding], ServerSettings(port=port)) as address:
        try:
            yield address, engine
        finally:
            engine.close()  # ends feed streams first, so the drain is immediate


def limit(
    engine: MatchingEngine,
    order_id: str,
    side: Side,
    quantity: int,
    price: int,
    symbol: str = "AAPL",
) -> None:
    engine.submit(
        order_id=order_id,
        account_id="acc-" + order_id,
        symbol=symbol,
        side=side,
        type=OrderType.LIMIT,
        time_in_force=TimeInForce.GTC,
        quantity=quantity,
        price=price,
    )
