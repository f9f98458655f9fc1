"""Order events: per-account fan-out, sequence numbers, slow subscribers, and the
events a placement publishes (maker fills included)."""

from __future__ import annotations

import pytest

from services.errors import FailedPrecondition, InvalidArgument, ResourceExhausted
from services.model import OrderSpec, OrderStatus, OrderType, Side, TimeInForce
from services.orders.events import OrderEvent, OrderEventHub, OrderEventStream, OrderEventType
from services.orders.lifecycle import Order
from services.orders.placement import OrderDesk
from tests.services.orders.support import order

ACCEPTED, FILLED = OrderEventType.ACCEPTED, OrderEventType.FILLED
CANCELED, REJECTED = OrderEventType.CANCELED, OrderEventType.REJECTED
SPEC = OrderSpec("AAPL", Side.BUY, OrderType.LIMIT, TimeInForce.GTC, 10, 10_000)


def accepted(account: str, order_id: str = "o-1") -> OrderEvent:
    pending = Order.pending(
        order_id=order_id, account_id=account, client_order_id=order_id, spec=SPEC, now_ns=1
    )
    return OrderEvent(ACCEPTED, pending.accept(2))


def drain(stream: OrderEventStream) -> list[tuple[int, OrderEvent]]:
    """What a stream has queued, without waiting."""
    items = []
    while not stream._queue.empty():
        item = stream._queue.get_nowait()
        if isinstance(item, tuple):
            items.append(item)
    return items


async def test_events_reach_only_the_accounts_subscribers_numbered_from_one() -> None:
    hub = OrderEventHub()
    alice, also_alice, bob = hub.subscribe("alice"), hub.subscribe("alice"), hub.subscribe("bob")
    hub.publish(accepted("alice", "o-1"))
    hub.publish(accepted("alice", "o-2"))
    hub.publish(accepted("carol"))  # nobody listens: dropped without cost

    assert [(seq, e.order.order_id) for seq, e in [await anext(alice), await anext(alice)]] == [
        (1, "o-1"),
        (2, "o-2"),
    ]
    assert [seq for seq, _ in drain(also_alice)] == [1, 2]
    assert drain(bob) == []
    assert hub.subscriber_count("alice") == 2 and hub.subscriber_count() == 3


async def test_a_subscriber_that_falls_behind_is_dropped_with_resource_exhausted() -> None:
    hub = OrderEventHub(queue_size=2)
    slow, other = hub.subscribe("alice"), hub.subscribe("bob")
    for i in range(3):
        hub.publish(accepted("alice", f"o-{i}"))

    assert slow.closed and hub.subscriber_count("alice") == 0
    with pytest.raises(ResourceExhausted, match="resubscribe and reconcile with ListOrders"):
        await anext(slow)
    assert not other.closed, "only the slow subscriber is dropped"


async def test_leaving_or_closing_ends_streams_normally() -> None:
    hub = OrderEventHub()
    with hub.subscribe("alice") as stream:
        assert hub.subscriber_count("alice") == 1
    assert hub.subscriber_count() == 0
    with pytest.raises(StopAsyncIteration):
        await anext(stream)

    left_open = hub.subscribe("bob")
    hub.close()
    assert [event async for event in left_open] == []
    with pytest.raises(ValueError, match="at least 1"):
        OrderEventHub(queue_size=0)


def types(stream: OrderEventStream) -> list[tuple[int, OrderEventType, OrderStatus | None]]:
    return [(seq, e.type, e.order.status) for seq, e in drain(stream)]


async def test_a_trade_reaches_the_taker_and_the_maker(desk: OrderDesk) -> None:
    alice, bob = desk.subscribe("alice"), desk.subscribe("bob")
    maker = (await desk.place(order("bob", "s-1", side=2, quantity=10))).order
    taken = await desk.place(order("alice", "b-1", quantity=4))

    assert types(alice) == [
        (1, ACCEPTED, OrderStatus.NEW),
        (2, FILLED, OrderStatus.FILLED),
    ]
    bob_events = drain(bob)
    assert [(seq, e.type) for seq, e in bob_events] == [(1, ACCEPTED), (2, FILLED)]
    maker_fill = bob_events[1][1]
    assert maker_fill.order.order_id == maker.order_id
    assert (maker_fill.order.status, maker_fill.order.filled_quantity) == (
        OrderStatus.PARTIALLY_FILLED,
        4,
    )
    assert maker_fill.fill is not None and not maker_fill.fill.aggressor
    assert maker_fill.fill.trade_id == taken.fills[0].trade_id, "both sides of one trade"


async def test_each_fill_is_its_own_event_and_an_ioc_rest_is_canceled(desk: OrderDesk) -> None:
    await desk.place(order("bob", "s-1", side=2, quantity=2, price=9_900))
    await desk.place(order("bob", "s-2", side=2, quantity=3, price=10_000))
    alice = desk.subscribe("alice")
    await desk.place(order("alice", "b-1", quantity=10, tif=2))

    events = drain(alice)
    assert [(seq, e.type) for seq, e in events] == [
        (1, ACCEPTED),
        (2, FILLED),
        (3, FILLED),
        (4, CANCELED),
    ]
    fills = [(e.fill.quantity, e.fill.price, e.order.filled_quantity) for _, e in events[1:3]]
    assert fills == [(2, 9_900, 2), (3, 10_000, 5)], "each event shows the order after it"
    assert events[3][1].order.status is OrderStatus.CANCELED


async def test_cancels_and_rejects_are_published(desk: OrderDesk) -> None:
    alice = desk.subscribe("alice")
    placed = (await desk.place(order("alice", "b-1"))).order
    await desk.cancel("alice", order_id=placed.order_id)
    with pytest.raises(FailedPrecondition):
        await desk.place(order("alice", "b-2", quantity=100_001))

    assert [(seq, t) for seq, t, _ in types(alice)] == [
        (1, ACCEPTED),
        (2, CANCELED),
        (3, REJECTED),
    ]


async def test_a_replay_publishes_nothing(desk: OrderDesk) -> None:
    await desk.place(order())
    alice = desk.subscribe("alice")
    await desk.place(order())
    assert drain(alice) == []


def test_subscribing_needs_a_valid_account(desk: OrderDesk) -> None:
    with pytest.raises(InvalidArgument, match="account_id"):
        desk.subscribe("")
