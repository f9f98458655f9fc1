"""A matching engine dies and comes back: the resting orders of the symbols it owned
are re-submitted by OrderService, first to the survivor, then back to it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import grpc
import pytest

from clients import trading
from clients.mesh import Mesh
from discovery import EtcdConfig
from services.instruments import DEFAULT_INSTRUMENTS
from services.launcher import LocalMesh
from trading.v1 import common_pb2, matching_pb2, matching_pb2_grpc, orders_pb2, orders_pb2_grpc

pytestmark = pytest.mark.e2e

SYMBOLS = [instrument.symbol for instrument in DEFAULT_INSTRUMENTS]
BUY, SELL = common_pb2.SIDE_BUY, common_pb2.SIDE_SELL
# Valid for every listed instrument (ticks of 5, 25 and 100; BTCUSD lots of 10).
BEST, LOWER, ASK = 200_000, 199_900, 201_000
# Per symbol, in placing order: two bids at the best price (time priority), one
# below, one ask.
RESTING = [("ann", BUY, 10, BEST), ("ben", BUY, 20, BEST), ("cat", BUY, 30, LOWER)]
RESTING += [("dan", SELL, 10, ASK)]
Levels = list[tuple[int, int, int]]


@pytest.fixture
def local_mesh(tmp_path: Path) -> Iterator[LocalMesh]:
    """etcd, two matching engines, two OrderService processes on one store, one risk."""
    instances = {"orders": 2, "risk": 1, "matching": 2, "marketdata": 0}
    started = LocalMesh.on_free_ports(tmp_path, instances=instances, grace_seconds=1.0)
    with started.running():
        yield started


def levels(book: matching_pb2.BookSnapshot) -> Levels:
    return [(lv.price, lv.quantity, lv.order_count) for lv in [*book.bids, *book.asks]]


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> float:
    """Seconds until `check()` holds (an RPC error counts as not yet)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if await check():
                return time.monotonic() - started
        except grpc.aio.AioRpcError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError(f"still not so after {timeout} s")


async def test_resting_orders_follow_their_symbols_when_an_engine_dies_and_returns(
    local_mesh: LocalMesh,
) -> None:
    config = EtcdConfig.from_endpoints(local_mesh.etcd_endpoints)
    engine = local_mesh.processes["matching-0"]
    survivor = local_mesh.processes["matching-1"]
    async with (
        Mesh.from_etcd(config) as mesh,
        grpc.aio.insecure_channel(engine.address) as to_engine,
        grpc.aio.insecure_channel(survivor.address) as to_survivor,
    ):
        matching = await mesh.channel(trading.MATCHING)
        routed = matching_pb2_grpc.MatchingEngineStub(matching)
        direct = {
            "matching-0": matching_pb2_grpc.MatchingEngineStub(to_engine),
            "matching-1": matching_pb2_grpc.MatchingEngineStub(to_survivor),
        }
        orders = orders_pb2_grpc.OrderServiceStub(await mesh.channel(trading.ORDERS))

        async def book(stub: matching_pb2_grpc.MatchingEngineStub, symbol: str) -> Levels:
            return levels(await stub.GetBook(matching_pb2.GetBookRequest(symbol=symbol)))

        async def books_are(
            stub_of: Callable[[str], matching_pb2_grpc.MatchingEngineStub],
            wanted: dict[str, Levels],
        ) -> bool:
            return all([await book(stub_of(s), s) == want for s, want in wanted.items()])

        async def both_engines_serve() -> bool:
            return len(matching.pool.usable()) == 2

        await eventually(both_engines_serve)
        owner = {symbol: matching.pool.picker.owner(symbol) for symbol in SYMBOLS}
        owned = [symbol for symbol in SYMBOLS if owner[symbol] == "matching-0"]
        kept = [symbol for symbol in SYMBOLS if owner[symbol] == "matching-1"]
        assert owned and kept, owner

        placed: dict[str, list[orders_pb2.Order]] = {}
        for symbol in SYMBOLS:
            for account, side, quantity, price in RESTING:
                reply = await orders.PlaceOrder(
                    orders_pb2.PlaceOrderRequest(
                        account_id=account,
                        client_order_id=f"{symbol}-{account}",
                        symbol=symbol,
                        side=side,
                        type=common_pb2.ORDER_TYPE_LIMIT,
                        quantity=quantity,
                        price=price,
                    )
                )
                assert reply.order.status == common_pb2.ORDER_STATUS_NEW
                placed.setdefault(symbol, []).append(reply.order)
        full = [(BEST, 30, 2), (LOWER, 30, 1), (ASK, 10, 1)]
        assert await books_are(lambda s: direct[owner[s]], dict.fromkeys(SYMBOLS, full))

        engine.process.kill()  # SIGKILL: its books are gone
        engine.process.wait()
        moved_in = await eventually(
            lambda: books_are(lambda _s: routed, dict.fromkeys(owned, full)), timeout=5
        )
        print(f"\nbooks of {', '.join(owned)} complete on matching-1 {moved_in:.2f} s after kill")
        assert await books_are(lambda _s: direct["matching-1"], dict.fromkeys(SYMBOLS, full))
        for order in [o for symbol in SYMBOLS for o in placed[symbol]]:
            got = await orders.GetOrder(
                orders_pb2.GetOrderRequest(account_id=order.account_id, order_id=order.order_id)
            )
            assert got.status == common_pb2.ORDER_STATUS_NEW, got

        # A crossing order trades with the re-homed orders, oldest first.
        symbol = owned[0]
        first, second = placed[symbol][:2]
        crossing = await orders.PlaceOrder(
            orders_pb2.PlaceOrderRequest(
                account_id="eve",
                client_order_id="cross-1",
                symbol=symbol,
                side=SELL,
                type=common_pb2.ORDER_TYPE_LIMIT,
                quantity=10,
                price=BEST,
            )
        )
        assert crossing.order.status == common_pb2.ORDER_STATUS_FILLED
        assert [(f.quantity, f.price) for f in crossing.fills] == [(10, BEST)]
        for maker, status in ((first, "FILLED"), (second, "NEW")):
            got = await orders.GetOrder(
                orders_pb2.GetOrderRequest(account_id=maker.account_id, order_id=maker.order_id)
            )
            assert common_pb2.OrderStatus.Name(got.status) == f"ORDER_STATUS_{status}"
        after = dict.fromkeys(owned, full) | {symbol: [(BEST, 20, 1), (LOWER, 30, 1), (ASK, 10, 1)]}

        restarted = time.monotonic()
        engine.start()  # back with empty books, and the same ring points
        await asyncio.to_thread(engine.wait_serving)
        serving = time.monotonic() - restarted
        await eventually(lambda: books_are(lambda _s: direct["matching-0"], after), timeout=10)
        back_in = time.monotonic() - restarted
        print(
            f"books back on matching-0 {back_in:.2f} s after its start ({serving:.2f} s to serve)"
        )
        assert await books_are(lambda _s: direct["matching-1"], {s: [] for s in owned})
        assert await books_are(lambda _s: direct["matching-1"], dict.fromkeys(kept, full))
        # This client routes there too once its own health watch sees the engine back.
        everything = after | dict.fromkeys(kept, full)
        await eventually(lambda: books_are(lambda _s: routed, everything), timeout=5)
