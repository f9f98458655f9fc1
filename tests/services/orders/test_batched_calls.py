"""Coalesced Reserve and Submit over both transports: GrpcRisk/GrpcMatching and
HttpRisk/HttpMatching against two real RiskService and two real MatchingEngine
instances each (gRPC and REST), sharded by account and by symbol. Concurrent
calls share one batched call per owner, and each gets exactly what its own call
would have got."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass

import pytest

from clients.http_pool import HttpMesh
from clients.mesh import Mesh
from clients.trading import MATCHING, RISK
from services.errors import AlreadyExists, DomainError, FailedPrecondition, InvalidArgument
from services.matching import app as matching_app
from services.matching.rest_app import build_rest_services as matching_rest
from services.model import OrderSpec, OrderStatus, OrderType, Side, TimeInForce
from services.orders.downstream import GrpcMatching, GrpcRisk, ring_owner
from services.orders.http_downstream import HttpMatching, HttpRisk
from services.orders.ports import Execution, FillDue, Hold
from services.risk import app as risk_app
from services.risk.rest_app import build_rest_services as risk_rest
from services.runtime.rest.server import serving_rest
from services.runtime.server import serving

ACCOUNTS = [f"acct-{i}" for i in range(12)]


@dataclass
class Ports:
    risk: GrpcRisk | HttpRisk
    matching: GrpcMatching | HttpMatching
    risk_owner: Callable[[str], str | None]
    matching_owner: Callable[[str], str | None]


async def _until_usable(usable: Callable[[], int]) -> None:
    for _ in range(200):  # 10 s at most
        if usable() == 2:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the two instances never became usable")


@pytest.fixture(params=["grpc", "rest"])
async def ports(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Ports]:
    monkeypatch.delenv("TRADEMESH_INSTRUMENTS", raising=False)
    async with AsyncExitStack() as stack:
        grpc = request.param == "grpc"
        serve = serving if grpc else serving_rest
        risks = [
            await stack.enter_async_context(
                serve(
                    risk_app.build_services if grpc else risk_rest,
                    risk_app.RiskSettings(port=0, max_order_quantity=1_000),
                )
            )
            for _ in range(2)
        ]
        engines = [
            await stack.enter_async_context(
                serve(
                    matching_app.build_services if grpc else matching_rest,
                    matching_app.MatchingSettings(port=0, engine_id=f"me-{i}"),
                )
            )
            for i in range(2)
        ]
        if grpc:
            mesh = Mesh.static({"risk": risks, "matching": engines})
            stack.push_async_callback(mesh.close)
            risk_channel = await mesh.channel(RISK)
            matching_channel = await mesh.channel(MATCHING)
            risk_pool, matching_pool = risk_channel.pool, matching_channel.pool
            await _until_usable(lambda: len(risk_pool.usable()))
            await _until_usable(lambda: len(matching_pool.usable()))
            yield Ports(
                GrpcRisk(risk_channel, timeout_seconds=2),
                GrpcMatching(matching_channel, timeout_seconds=2),
                ring_owner(risk_pool),
                ring_owner(matching_pool),
            )
        else:
            http = HttpMesh.static({"risk": risks, "matching": engines})
            stack.push_async_callback(http.close)
            rpool = await http.pool(RISK.service, balancer=RISK.balancer, timeout_seconds=2)
            mpool = await http.pool(MATCHING.service, balancer=MATCHING.balancer, timeout_seconds=2)
            await _until_usable(lambda: len(rpool.usable()))
            await _until_usable(lambda: len(mpool.usable()))
            yield Ports(
                HttpRisk(rpool, timeout_seconds=2),
                HttpMatching(mpool, timeout_seconds=2),
                ring_owner(rpool),
                ring_owner(mpool),
            )


def spec(side: Side, quantity: int, price: int = 10_000, symbol: str = "AAPL") -> OrderSpec:
    return OrderSpec(symbol, side, OrderType.LIMIT, TimeInForce.GTC, quantity, price)


async def outcomes(calls: list) -> list[object]:
    """Each call's result or DomainError, the calls started together in order."""

    async def one(call) -> object:
        try:
            return await call
        except DomainError as err:
            return err

    return await asyncio.gather(*(one(c) for c in calls))


async def test_concurrent_reserves_share_one_call_per_owner_with_exact_outcomes(
    ports: Ports,
) -> None:
    risk = ports.risk
    assert len({ports.risk_owner(a) for a in ACCOUNTS}) == 2, "both instances own accounts"
    await risk.reserve(reservation_id="r-acct-0", account_id="acct-0", spec=spec(Side.BUY, 10))
    calls_before = risk._reserves.calls
    results = await outcomes(
        [
            risk.reserve(reservation_id=f"r-{a}", account_id=a, spec=spec(Side.BUY, 10))
            for a in ACCOUNTS
        ]
        + [
            risk.reserve(
                reservation_id="r-big", account_id="acct-1", spec=spec(Side.BUY, 1_001, price=100)
            ),
            risk.reserve(reservation_id="r-acct-2", account_id="acct-2", spec=spec(Side.BUY, 11)),
            risk.reserve(reservation_id="r-zero", account_id="acct-3", spec=spec(Side.BUY, 0)),
        ]
    )
    # The first goes alone (nothing in flight); the 14 others wait for it, then go
    # together: one batched call per owner.
    assert risk._reserves.calls - calls_before == 2
    assert results[0] == Hold("r-acct-0", 10, 100_000, True), "a retry replays"
    assert results[1:12] == [Hold(f"r-{a}", 10, 100_000, False) for a in ACCOUNTS[1:]]
    too_big, reused, invalid = results[12:]
    assert isinstance(too_big, FailedPrecondition) and "max_order_quantity" in too_big.message
    assert isinstance(reused, AlreadyExists) and "r-acct-2" in reused.message
    assert isinstance(invalid, InvalidArgument)
    assert [v.field for v in invalid.violations] == ["quantity"]
    # Every reservation is on its account's owner: a fill against each is found there.
    settled = await risk.settle([FillDue(f"r-{a}", a, "t-1", 10_000, 1) for a in ACCOUNTS], ())
    assert settled.fills == (False,) * 12


async def test_concurrent_submits_share_one_call_per_engine_in_request_order(
    ports: Ports,
) -> None:
    matching = ports.matching
    symbols = ("AAPL", "MSFT")
    await matching.submit(order_id="s-0", account_id="acct-0", spec=spec(Side.SELL, 10))
    calls_before = matching._submits.calls
    calls = []
    for symbol in symbols:
        calls += [
            matching.submit(
                order_id=f"s-{symbol}", account_id="a", spec=spec(Side.SELL, 10, symbol=symbol)
            ),
            matching.submit(
                order_id=f"b1-{symbol}", account_id="b", spec=spec(Side.BUY, 4, symbol=symbol)
            ),
            matching.submit(
                order_id=f"b2-{symbol}", account_id="c", spec=spec(Side.BUY, 16, symbol=symbol)
            ),
        ]
    calls += [
        matching.submit(order_id="s-0", account_id="acct-0", spec=spec(Side.SELL, 10)),
        matching.submit(order_id="bad", account_id="a", spec=spec(Side.BUY, 0)),
    ]
    results = await outcomes(calls)
    assert matching._submits.calls - calls_before == 2, "the first alone, then one per engine"
    for offset, symbol in ((0, "AAPL"), (3, "MSFT")):
        sell, small, large = results[offset : offset + 3]
        assert isinstance(sell, Execution) and isinstance(small, Execution)
        assert isinstance(large, Execution)
        assert (sell.status, sell.resting_quantity) == (OrderStatus.NEW, 10)
        if symbol == "AAPL":  # s-0 rested before, at the same price: it trades first
            assert [(t.maker_order_id, t.quantity) for t in small.trades] == [("s-0", 4)]
            assert [(t.maker_order_id, t.quantity) for t in large.trades] == [
                ("s-0", 6),
                ("s-AAPL", 10),
            ]
            assert (large.status, large.resting_quantity) == (OrderStatus.FILLED, 0)
        else:  # in request order: the sell rests, then the buys take it
            assert [(t.maker_order_id, t.quantity) for t in small.trades] == [("s-MSFT", 4)]
            assert [(t.maker_order_id, t.quantity) for t in large.trades] == [("s-MSFT", 6)]
            assert (large.status, large.resting_quantity) == (OrderStatus.PARTIALLY_FILLED, 10)
    replay, invalid = results[6:]
    assert isinstance(replay, Execution) and replay.replayed and replay.order_id == "s-0"
    assert isinstance(invalid, InvalidArgument)
    # MSFT's orders went to MSFT's engine: its rest is there for a lone sell to take.
    taker = await matching.submit(
        order_id="s2", account_id="a", spec=spec(Side.SELL, 10, symbol="MSFT")
    )
    assert [(t.maker_order_id, t.quantity) for t in taker.trades] == [("b2-MSFT", 10)]
