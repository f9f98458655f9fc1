"""Two OrderService processes on one SQLite file: a subscriber of one sees the
changes the other books (the order event log in the shared store)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from services.launcher import ServiceProcess, free_port
from trading.v1 import common_pb2, orders_pb2, orders_pb2_grpc

pytestmark = pytest.mark.e2e
ACCEPTED, FILLED = orders_pb2.ORDER_EVENT_TYPE_ACCEPTED, orders_pb2.ORDER_EVENT_TYPE_FILLED


@dataclass
class TwoOrderServices:
    first: str
    second: str


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoOrderServices]:
    """Risk, matching, and two OrderService processes sharing one order store."""
    state: Path = tmp_path_factory.mktemp("shared-store")
    plain = ["--plaintext"]  # this test is about the shared store, not mTLS
    risk = ServiceProcess("risk", free_port(), plain, log_path=state / "risk.log")
    matching = ServiceProcess("matching", free_port(), plain, log_path=state / "matching.log")
    peers = ["--risk-address", risk.address, "--matching-address", matching.address]
    shared = [*plain, *peers, "--db-path", str(state / "orders.db"), "--grace-seconds", "1"]
    orders = [
        ServiceProcess("orders", free_port(), shared, log_path=state / f"orders-{i}.log")
        for i in range(2)
    ]
    processes = [risk, matching, *orders]
    try:
        for process in processes:  # all at once: OrderService dials its peers lazily
            process.start()
        for process in processes:
            process.wait_serving()
        yield TwoOrderServices(orders[0].address, orders[1].address)
    finally:
        codes = [process.stop() for process in reversed(processes)]
    assert codes == [0, 0, 0, 0], f"unclean exit; logs in {state}"


def limit(account: str, key: str, side: int, quantity: int) -> orders_pb2.PlaceOrderRequest:
    return orders_pb2.PlaceOrderRequest(
        account_id=account,
        client_order_id=key,
        symbol="TSLA",
        side=side,
        type=common_pb2.ORDER_TYPE_LIMIT,
        quantity=quantity,
        price=50_000,
    )


async def test_a_subscriber_sees_what_the_other_process_booked(
    services: TwoOrderServices,
) -> None:
    async with (
        grpc.aio.insecure_channel(services.first) as first,
        grpc.aio.insecure_channel(services.second) as second,
    ):
        here = orders_pb2_grpc.OrderServiceStub(first)
        there = orders_pb2_grpc.OrderServiceStub(second)
        follow = orders_pb2.StreamOrderEventsRequest
        maker_events = here.StreamOrderEvents(follow(account_id="mia"))
        taker_events = here.StreamOrderEvents(follow(account_id="ned"))
        # A stream's headers come with its first event, so nothing tells the client
        # that the server has subscribed: give it a moment on loopback.
        await asyncio.sleep(0.3)

        maker = await here.PlaceOrder(limit("mia", "s-1", common_pb2.SIDE_SELL, 10))
        taker = await there.PlaceOrder(limit("ned", "b-1", common_pb2.SIDE_BUY, 4))
        mia = [await asyncio.wait_for(maker_events.read(), 5) for _ in range(2)]
        ned = [await asyncio.wait_for(taker_events.read(), 5) for _ in range(2)]
        maker_events.cancel()
        taker_events.cancel()

    assert [(e.sequence, e.type) for e in mia] == [(1, ACCEPTED), (2, FILLED)]
    assert mia[1].order.order_id == maker.order.order_id
    assert (mia[1].fill.trade_id, mia[1].fill.aggressor) == (taker.fills[0].trade_id, False)
    assert [(e.sequence, e.type) for e in ned] == [(1, ACCEPTED), (2, FILLED)]
    assert ned[1].order.order_id == taker.order.order_id, "placed through the other process"
