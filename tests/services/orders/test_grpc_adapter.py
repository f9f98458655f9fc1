"""OrderService over real grpc.aio servers for itself, RiskService and the MatchingEngine."""

from __future__ import annotations

import asyncio
import itertools
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2
from grpc_status import rpc_status

from clients.channel_options import plaintext_channel
from services.matching import app as matching_app
from services.orders import app as orders_app
from services.orders.app import OrderSettings
from services.orders.grpc_adapter import OrderServiceServicer
from services.risk import app as risk_app
from services.runtime.server import ServiceBinding, serving
from tests.services.orders.support import until
from trading.v1 import common_pb2, orders_pb2, orders_pb2_grpc, risk_pb2, risk_pb2_grpc

BUY, SELL = common_pb2.SIDE_BUY, common_pb2.SIDE_SELL
_keys = itertools.count(1)


def limit(account: str, side: int, qty: int, price: int = 10_000, key: str = ""):
    return orders_pb2.PlaceOrderRequest(
        account_id=account,
        client_order_id=key or f"k{next(_keys)}",
        symbol="AAPL",
        side=side,
        type=common_pb2.ORDER_TYPE_LIMIT,
        quantity=qty,
        price=price,
    )


@dataclass
class Downstream:
    risk_address: str
    matching_address: str
    risk: risk_pb2_grpc.RiskServiceStub


@pytest.fixture
async def downstream(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Downstream]:
    monkeypatch.delenv("TRADEMESH_INSTRUMENTS", raising=False)  # the built-in catalog
    async with (
        serving(risk_app.build_services, risk_app.RiskSettings(port=0)) as risk_address,
        serving(
            matching_app.build_services, matching_app.MatchingSettings(port=0)
        ) as matching_address,
        plaintext_channel(risk_address) as channel,
    ):
        yield Downstream(risk_address, matching_address, risk_pb2_grpc.RiskServiceStub(channel))


@dataclass
class OrdersServer:
    stub: orders_pb2_grpc.OrderServiceStub
    servicer: OrderServiceServicer


StartOrders = Callable[..., AbstractAsyncContextManager[OrdersServer]]


@pytest.fixture
def start_orders(downstream: Downstream, tmp_path: Path) -> StartOrders:
    """Starts OrderService with its real build_services; `db` names its store file."""

    @asynccontextmanager
    async def start(db: str = "orders.db", **overrides: object) -> AsyncIterator[OrdersServer]:
        fields: dict[str, object] = {
            "port": 0,
            "risk_address": downstream.risk_address,
            "matching_address": downstream.matching_address,
            "db_path": tmp_path / db,
            "downstream_timeout_seconds": 1.0,
        }
        fields.update(overrides)
        settings = OrderSettings(**fields)  # type: ignore[arg-type]
        servicers: list[OrderServiceServicer] = []

        @asynccontextmanager
        async def factory(s: OrderSettings) -> AsyncIterator[list[ServiceBinding]]:
            async with orders_app.build_services(s) as bindings:
                servicers.append(bindings[0].servicer)
                yield bindings

        async with serving(factory, settings) as address, plaintext_channel(address) as channel:
            yield OrdersServer(orders_pb2_grpc.OrderServiceStub(channel), servicers[0])

    return start


@pytest.fixture
async def orders(start_orders: StartOrders) -> AsyncIterator[OrdersServer]:
    async with start_orders() as server:
        yield server


async def test_place_get_list_cancel_round_trip(
    orders: OrdersServer, downstream: Downstream
) -> None:
    placed = await orders.stub.PlaceOrder(limit("alice", BUY, 10, key="c-1"))
    assert placed.order.status == common_pb2.ORDER_STATUS_NEW and not placed.replayed
    assert placed.order.time_in_force == common_pb2.TIME_IN_FORCE_GTC, "defaults are resolved"
    order_id = placed.order.order_id

    got = await orders.stub.GetOrder(
        orders_pb2.GetOrderRequest(account_id="alice", order_id=order_id)
    )
    assert got == placed.order
    by_key = orders_pb2.GetOrderRequest(account_id="alice", client_order_id="c-1")
    assert await orders.stub.GetOrder(by_key) == placed.order
    listed = await orders.stub.ListOrders(orders_pb2.ListOrdersRequest(account_id="alice"))
    assert list(listed.orders) == [placed.order] and listed.next_page_token == ""
    held = await downstream.risk.GetAccount(risk_pb2.GetAccountRequest(account_id="alice"))
    assert held.reserved_cash == 100_000

    canceled = await orders.stub.CancelOrder(
        orders_pb2.CancelOrderRequest(account_id="alice", client_order_id="c-1")
    )
    assert canceled.canceled_quantity == 10
    assert canceled.order.status == common_pb2.ORDER_STATUS_CANCELED
    freed = await downstream.risk.GetAccount(risk_pb2.GetAccountRequest(account_id="alice"))
    assert freed.reserved_cash == 0


async def test_a_trade_books_fills_on_both_sides(orders: OrdersServer, downstream) -> None:
    maker = await orders.stub.PlaceOrder(limit("bob", SELL, 10))
    taker = await orders.stub.PlaceOrder(limit("alice", BUY, 4, price=10_100))

    assert taker.order.status == common_pb2.ORDER_STATUS_FILLED
    assert [(f.quantity, f.price, f.aggressor) for f in taker.fills] == [(4, 10_000, True)]
    bob = await orders.stub.GetOrder(
        orders_pb2.GetOrderRequest(account_id="bob", order_id=maker.order.order_id)
    )
    assert (bob.status, bob.filled_quantity) == (common_pb2.ORDER_STATUS_PARTIALLY_FILLED, 4)
    assert await orders.servicer.desk.settled(within_seconds=5), "risk settles after the answer"
    alice = await downstream.risk.GetAccount(risk_pb2.GetAccountRequest(account_id="alice"))
    assert (alice.reserved_cash, [p.quantity for p in alice.positions]) == (0, [4])


async def test_errors_carry_their_code_and_field_violations(orders: OrdersServer) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await orders.stub.PlaceOrder(orders_pb2.PlaceOrderRequest(account_id="alice"))
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(caught.value)
    bad_request = error_details_pb2.BadRequest()
    assert status is not None and status.details[0].Unpack(bad_request)
    fields = [v.field for v in bad_request.field_violations]
    assert fields == ["symbol", "side", "type", "quantity", "client_order_id"]

    first = await orders.stub.PlaceOrder(limit("alice", BUY, 1, key="dup"))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await orders.stub.PlaceOrder(limit("alice", BUY, 2, key="dup"))
    assert caught.value.code() is grpc.StatusCode.ALREADY_EXISTS
    assert first.order.order_id in caught.value.details()

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await orders.stub.PlaceOrder(limit("alice", BUY, 100_001, price=100))
    assert caught.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert "max_order_quantity" in caught.value.details()

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await orders.stub.GetOrder(
            orders_pb2.GetOrderRequest(account_id="bob", order_id=first.order.order_id)
        )
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND


async def test_order_events_stream_fills_to_the_maker(orders: OrdersServer) -> None:
    desk = orders.servicer.desk
    stream = orders.stub.StreamOrderEvents(orders_pb2.StreamOrderEventsRequest(account_id="bob"))
    await until(lambda: desk.events.subscriber_count("bob") == 1, turns=10_000)

    await orders.stub.PlaceOrder(limit("bob", SELL, 10))
    await orders.stub.PlaceOrder(limit("alice", BUY, 4))
    events = [await asyncio.wait_for(stream.read(), 5) for _ in range(2)]

    assert [(e.sequence, e.type) for e in events] == [
        (1, orders_pb2.ORDER_EVENT_TYPE_ACCEPTED),
        (2, orders_pb2.ORDER_EVENT_TYPE_FILLED),
    ]
    assert (events[1].fill.quantity, events[1].fill.aggressor) == (4, False)
    assert events[1].order.filled_quantity == 4
    stream.cancel()
    await until(lambda: desk.events.subscriber_count() == 0, turns=10_000)


async def test_order_events_reach_a_subscriber_of_another_server_on_the_same_store(
    start_orders: StartOrders,
) -> None:
    async with start_orders("shared.db") as here, start_orders("shared.db") as there:
        stream = here.stub.StreamOrderEvents(orders_pb2.StreamOrderEventsRequest(account_id="bob"))
        events = here.servicer.desk.events
        await until(lambda: events.subscriber_count("bob") == 1, turns=10_000)

        maker = await here.stub.PlaceOrder(limit("bob", SELL, 10))
        await there.stub.PlaceOrder(limit("alice", BUY, 4))  # books bob's side too
        received = [await asyncio.wait_for(stream.read(), 5) for _ in range(2)]
        stream.cancel()

    assert [(e.sequence, e.type) for e in received] == [
        (1, orders_pb2.ORDER_EVENT_TYPE_ACCEPTED),
        (2, orders_pb2.ORDER_EVENT_TYPE_FILLED),
    ]
    assert received[1].order.order_id == maker.order.order_id
    assert (received[1].fill.quantity, received[1].fill.aggressor) == (4, False)


async def test_order_entry_answers_each_batch_in_order(orders: OrdersServer) -> None:
    good = [limit("erin", BUY, 5, price=10_000 + i) for i in range(3)]
    invalid = limit("erin", BUY, 0)
    too_many = [limit("erin", BUY, 1) for _ in range(1001)]
    call = orders.stub.OrderEntry()
    await call.write(orders_pb2.OrderEntryRequest(batch_id=7, orders=good))
    await call.write(orders_pb2.OrderEntryRequest(batch_id=8, orders=[invalid, good[1]]))
    await call.write(orders_pb2.OrderEntryRequest(batch_id=9, orders=too_many))
    await call.done_writing()
    responses = [response async for response in call]

    assert [r.batch_id for r in responses] == [7, 8, 9]
    placed = [r.placed.order.client_order_id for r in responses[0].results]
    assert placed == [o.client_order_id for o in good]
    error, replay = responses[1].results
    assert error.error.code == code_pb2.INVALID_ARGUMENT
    bad_request = error_details_pb2.BadRequest()
    assert error.error.details[0].Unpack(bad_request)
    assert [v.field for v in bad_request.field_violations] == ["quantity"]
    assert replay.placed.replayed
    assert replay.placed.order.order_id == responses[0].results[1].placed.order.order_id
    big = responses[2].results
    assert len(big) == 1001 and {r.error.code for r in big} == {code_pb2.INVALID_ARGUMENT}
    assert "at most 1000 orders" in big[0].error.message
    assert await call.code() is grpc.StatusCode.OK


async def test_a_restarted_service_answers_for_everything_it_acknowledged(
    start_orders: StartOrders,
) -> None:
    request = limit("jo", SELL, 9, key="keep")
    async with start_orders("durable.db") as first:
        placed = await first.stub.PlaceOrder(request)

    async with start_orders("durable.db") as second:
        got = await second.stub.GetOrder(
            orders_pb2.GetOrderRequest(account_id="jo", order_id=placed.order.order_id)
        )
        listed = await second.stub.ListOrders(orders_pb2.ListOrdersRequest(account_id="jo"))
        replay = await second.stub.PlaceOrder(request)
    assert got == placed.order
    assert list(listed.orders) == [placed.order]
    assert replay.replayed and replay.order == placed.order


async def test_an_unreachable_engine_gives_unavailable(start_orders: StartOrders) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{sock.getsockname()[1]}"
    async with start_orders(matching_address=dead, downstream_timeout_seconds=0.5) as server:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await server.stub.PlaceOrder(limit("kim", BUY, 1, key="c-1"))
        assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
        assert caught.value.details().startswith("matching engine unavailable")
        pending = await server.stub.GetOrder(
            orders_pb2.GetOrderRequest(account_id="kim", client_order_id="c-1")
        )
        assert pending.status == common_pb2.ORDER_STATUS_UNSPECIFIED, "still being unwound"
