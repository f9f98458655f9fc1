"""Order events: the tailer of the store's event log, its per-account fan-out,
sequence numbers and slow subscribers; the events a placement logs (maker fills
included); and the events another process sharing the store books."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from services.errors import FailedPrecondition, InvalidArgument, ResourceExhausted
from services.model import OrderSpec, OrderStatus, OrderType, Side, TimeInForce
from services.orders.events import OrderEvent, OrderEventHub, OrderEventStream, OrderEventType
from services.orders.lifecycle import Order
from services.orders.placement import OrderDesk
from services.orders.store import OrderStore
from tests.services.orders.support import order

ACCEPTED, FILLED = OrderEventType.ACCEPTED, OrderEventType.FILLED
CANCELED, REJECTED = OrderEventType.CANCELED, OrderEventType.REJECTED
SPEC = OrderSpec("AAPL", Side.BUY, OrderType.LIMIT, TimeInForce.GTC, 10, 10_000)
MakeDesk = Callable[..., OrderDesk]


def accepted(account: str, order_id: str = "o-1") -> OrderEvent:
    pending = Order.pending(
        order_id=order_id, account_id=account, client_order_id=order_id, spec=SPEC, now_ns=1
    )
    return OrderEvent(ACCEPTED, pending.accept(2))


def commit(store: OrderStore, *events: OrderEvent) -> None:
    """Appends `events` as the transaction of a change would."""
    with store.transaction():
        store.append_events(events, now_ns=1)


def drain(stream: OrderEventStream) -> list[tuple[int, OrderEvent]]:
    """What the stream holds once its hub has read the log to the end, without waiting."""
    stream._hub.catch_up()
    return stream.drain_nowait()


def types(stream: OrderEventStream) -> list[tuple[int, OrderEventType, OrderStatus | None]]:
    return [(seq, e.type, e.order.status) for seq, e in drain(stream)]


class CountingLog:
    """The store as the hub's log, counting the reads of events."""

    def __init__(self, store: OrderStore) -> None:
        self.store = store
        self.reads = 0

    def events_after(self, seq: int, limit: int) -> list[tuple[int, OrderEvent]]:
        self.reads += 1
        return self.store.events_after(seq, limit)

    def last_event_seq(self) -> int:
        return self.store.last_event_seq()


@pytest.fixture
def other_store(db_path: Path) -> Iterator[OrderStore]:
    """A second connection to the same file, as another OrderService process has."""
    opened = OrderStore(db_path)
    yield opened
    opened.close()


# -- the hub over the log ---------------------------------------------------------


async def test_events_reach_only_the_accounts_subscribers_numbered_from_one(
    store: OrderStore,
) -> None:
    hub = OrderEventHub(store)
    commit(store, accepted("alice", "before"))  # history: nobody gets it
    alice, also_alice, bob = hub.subscribe("alice"), hub.subscribe("alice"), hub.subscribe("bob")
    commit(store, accepted("alice", "o-1"), accepted("alice", "o-2"))
    commit(store, accepted("carol"))  # nobody here listens
    hub.catch_up()

    assert [(seq, e.order.order_id) for seq, e in [await anext(alice), await anext(alice)]] == [
        (1, "o-1"),
        (2, "o-2"),
    ], "numbered per stream, not by the log"
    assert [seq for seq, _ in drain(also_alice)] == [1, 2]
    assert drain(bob) == []
    assert hub.subscriber_count("alice") == 2 and hub.subscriber_count() == 3
    assert hub.cursor == store.last_event_seq() == 4


async def test_a_subscriber_starts_at_the_end_of_the_log(store: OrderStore) -> None:
    hub = OrderEventHub(store)
    early = hub.subscribe("alice")
    commit(store, accepted("alice", "o-1"))  # committed, not read by the hub yet
    late = hub.subscribe("alice")
    commit(store, accepted("alice", "o-2"))

    assert [(seq, e.order.order_id) for seq, e in drain(early)] == [(1, "o-1"), (2, "o-2")]
    assert [(seq, e.order.order_id) for seq, e in drain(late)] == [(1, "o-2")]


async def test_a_backlog_is_read_batch_by_batch_in_log_order(store: OrderStore) -> None:
    log = CountingLog(store)
    hub = OrderEventHub(log, batch_size=2)
    alice = hub.subscribe("alice")
    commit(store, *[accepted("alice", f"o-{i}") for i in range(5)])

    assert hub.poll() == 2, "one batch per poll"
    hub.catch_up()
    assert [e.order.order_id for _, e in drain(alice)] == [f"o-{i}" for i in range(5)]
    assert log.reads == 3 + 1  # 2 + 2 + 1, then drain's catch-up finds nothing


async def test_without_subscribers_the_hub_reads_no_events_but_keeps_its_cursor_at_the_end(
    store: OrderStore,
) -> None:
    log = CountingLog(store)
    hub = OrderEventHub(log)
    commit(store, *[accepted("alice", f"o-{i}") for i in range(5)])
    assert hub.poll() == 0
    assert log.reads == 0, "nothing read, decoded or dispatched"
    assert hub.cursor == 5

    alice = hub.subscribe("alice")
    commit(store, accepted("alice", "o-new"))
    assert [(seq, e.order.order_id) for seq, e in drain(alice)] == [(1, "o-new")]
    assert log.reads == 1 and hub.cursor == 6, "no backlog to read for the first subscriber"


async def test_a_subscriber_that_falls_behind_is_dropped_with_resource_exhausted(
    store: OrderStore,
) -> None:
    hub = OrderEventHub(store, queue_size=2)
    slow, other = hub.subscribe("alice"), hub.subscribe("bob")
    commit(store, *[accepted("alice", f"o-{i}") for i in range(3)])
    hub.catch_up()

    assert slow.closed and hub.subscriber_count("alice") == 0
    with pytest.raises(ResourceExhausted, match="resubscribe and reconcile with ListOrders"):
        await anext(slow)
    assert not other.closed, "only the slow subscriber is dropped"


async def test_leaving_or_closing_ends_streams_normally(store: OrderStore) -> None:
    hub = OrderEventHub(store)
    with hub.subscribe("alice") as stream:
        assert hub.subscriber_count("alice") == 1
    assert hub.subscriber_count() == 0
    with pytest.raises(StopAsyncIteration):
        await anext(stream)

    left_open = hub.subscribe("bob")
    hub.close()
    assert [event async for event in left_open] == []
    with pytest.raises(ValueError, match="at least 1"):
        OrderEventHub(store, queue_size=0)


# -- the tailer task --------------------------------------------------------------


async def test_the_tailer_reads_this_processes_commits_at_once(
    make_desk: MakeDesk, store: OrderStore
) -> None:
    hub = OrderEventHub(store, poll_seconds=60)  # only a commit's poke can wake it in time
    desk = make_desk(store, hub)
    hub.start()
    try:
        alice = desk.subscribe("alice")
        await desk.place(order())
        seq, event = await asyncio.wait_for(anext(alice), 1)
        assert (seq, event.type) == (1, ACCEPTED)
        with pytest.raises(RuntimeError, match="already running"):
            hub.start()
    finally:
        await hub.stop()
    assert alice.closed, "stopping ends the streams"


async def test_the_tailer_polls_for_other_processes_commits(
    store: OrderStore, other_store: OrderStore
) -> None:
    hub = OrderEventHub(store)
    hub.start()
    try:
        alice = hub.subscribe("alice")
        commit(other_store, accepted("alice"))  # another process: no poke reaches this hub
        seq, event = await asyncio.wait_for(anext(alice), 1)
        assert (seq, event.order.order_id) == (1, "o-1")
    finally:
        await hub.stop()


# -- what placements and cancels log ----------------------------------------------


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


async def test_cancels_and_rejects_are_logged(desk: OrderDesk) -> None:
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


async def test_a_replay_logs_nothing(desk: OrderDesk, store: OrderStore) -> None:
    await desk.place(order())
    alice = desk.subscribe("alice")
    logged = store.last_event_seq()
    await desk.place(order())
    assert drain(alice) == [] and store.last_event_seq() == logged


def test_subscribing_needs_a_valid_account(desk: OrderDesk) -> None:
    with pytest.raises(InvalidArgument, match="account_id"):
        desk.subscribe("")


# -- two processes on one store ---------------------------------------------------


async def test_a_subscriber_sees_what_another_process_booked_in_commit_order(
    make_desk: MakeDesk, store: OrderStore, other_store: OrderStore
) -> None:
    here, there = make_desk(store), make_desk(other_store)
    bob, alice = here.subscribe("bob"), here.subscribe("alice")
    maker = (await here.place(order("bob", "s-1", side=2, quantity=10))).order
    # Placed through the other process, which books both sides of the trade.
    taken = await there.place(order("alice", "b-1", quantity=4))
    await there.cancel("bob", order_id=maker.order_id)
    await there.place(order("alice", "b-2", quantity=3, price=9_000))

    bob_events = drain(bob)
    assert [(seq, e.type, e.order.status) for seq, e in bob_events] == [
        (1, ACCEPTED, OrderStatus.NEW),
        (2, FILLED, OrderStatus.PARTIALLY_FILLED),
        (3, CANCELED, OrderStatus.CANCELED),
    ]
    maker_fill = bob_events[1][1].fill
    assert maker_fill is not None and maker_fill.trade_id == taken.fills[0].trade_id
    assert not maker_fill.aggressor and maker_fill.order_id == maker.order_id
    assert types(alice) == [
        (1, ACCEPTED, OrderStatus.NEW),
        (2, FILLED, OrderStatus.FILLED),
        (3, ACCEPTED, OrderStatus.NEW),
    ]


async def test_concurrent_placements_through_two_processes_arrive_in_commit_order(
    make_desk: MakeDesk, store: OrderStore, other_store: OrderStore
) -> None:
    here, there = make_desk(store), make_desk(other_store)
    alice = here.subscribe("alice")
    await asyncio.gather(
        *[
            (here if i % 2 else there).place(order("alice", f"b-{i}", price=9_000 + i))
            for i in range(10)
        ]
    )

    seen = drain(alice)
    logged = [e for _, e in store.events_after(0, 100) if e.order.account_id == "alice"]
    assert [seq for seq, _ in seen] == list(range(1, 11))
    assert [e for _, e in seen] == logged, "the log's order, which is the commit order"
    assert {e.order.order_id for e in logged} == {
        o.order_id for o in here.list_orders("alice").orders
    }
