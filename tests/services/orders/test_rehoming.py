"""Re-homing: a symbol's resting orders follow it to the engine that now owns it,
over two in-process engines sharded by a RingHashPicker."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from services.errors import Unavailable
from services.instruments import InstrumentCatalog
from services.model import OrderStatus
from services.orders.lifecycle import Order
from services.orders.placement import OrderDesk
from services.orders.rehoming import Outcome, SymbolRehoming
from services.orders.store import OrderStore
from services.risk.accounts import RiskBook
from tests.services.orders.support import (
    GRACE_SECONDS,
    Clock,
    EngineRing,
    InProcessRisk,
    order,
    until,
)

M0, M1 = "matching-0", "matching-1"
NEW, PARTIAL, FILLED, CANCELED = (
    OrderStatus.NEW,
    OrderStatus.PARTIALLY_FILLED,
    OrderStatus.FILLED,
    OrderStatus.CANCELED,
)
SELL = 2
# On a ring of both engines AAPL belongs to matching-0 and TSLA to matching-1.
OF_M0, OF_M1 = "AAPL", "TSLA"


@pytest.fixture
def ring(catalog: InstrumentCatalog) -> EngineRing:
    both = EngineRing(catalog, (M0, M1))
    assert (both.owner(OF_M0), both.owner(OF_M1)) == (M0, M1)
    return both


@pytest.fixture
def make(
    ring: EngineRing, risk: InProcessRisk, catalog: InstrumentCatalog, clock: Clock, db_path: Path
):
    """(desk, rehoming) over their own connection to the shared order store."""
    stores: list[OrderStore] = []

    def build() -> tuple[OrderDesk, SymbolRehoming]:
        store = OrderStore(db_path)
        stores.append(store)
        desk = OrderDesk(
            store,
            risk,
            ring,
            catalog=catalog,
            recovery_grace_seconds=GRACE_SECONDS,
            clock=clock,
        )
        rehoming = SymbolRehoming(desk, store, ring, catalog.symbols, clock=clock)
        rehoming.start()
        return desk, rehoming

    yield build
    for store in stores:
        store.close()


def status(desk: OrderDesk, placed: Order) -> tuple[OrderStatus | None, int, int]:
    now = desk.get(placed.account_id, order_id=placed.order_id)
    return now.status, now.filled_quantity, now.open_quantity


async def test_orders_of_an_engine_that_left_rest_again_on_the_new_owner_in_time_priority(
    make: Callable, ring: EngineRing, risk_book: RiskBook
) -> None:
    desk, rehoming = make()
    first = (await desk.place(order("alice", "a-1", quantity=10, price=10_000))).order
    second = (await desk.place(order("bob", "b-1", quantity=5, price=10_000))).order
    lower = (await desk.place(order("carol", "c-1", quantity=7, price=9_900))).order
    await desk.place(order("dave", "d-1", side=SELL, quantity=4, price=10_000))  # fills 4 of first
    other = (await desk.place(order("erin", "e-1", quantity=3, symbol=OF_M1))).order
    assert await desk.settled()
    reserved = risk_book.account("alice").reserved_cash
    assert ring.book(M0, OF_M0) == [(10_000, 11, 2), (9_900, 7, 1)]

    ring.leave(M0)  # crashed: its books are gone
    await rehoming.idle()

    assert ring.owner(OF_M0) == M1
    assert ring.book(M1, OF_M0) == [(10_000, 11, 2), (9_900, 7, 1)]
    resubmitted = [(name, oid) for name, method, oid in ring.calls[-3:] if method == "submit"]
    assert resubmitted == [(M1, first.order_id), (M1, second.order_id), (M1, lower.order_id)]
    assert status(desk, first) == (PARTIAL, 4, 6)  # only its open quantity moved
    assert status(desk, second) == (NEW, 0, 5)
    assert status(desk, other) == (NEW, 0, 3)  # TSLA did not move: untouched
    assert ring.book(M1, OF_M1) == [(10_000, 3, 1)]
    assert risk_book.account("alice").reserved_cash == reserved
    assert rehoming.outcomes == {Outcome.MOVED: 3}

    # Time priority survived: the oldest order at the best price fills first.
    await desk.place(order("fay", "f-1", side=SELL, quantity=6, price=10_000))
    assert status(desk, first) == (FILLED, 10, 0)
    assert status(desk, second) == (NEW, 0, 5)
    assert await desk.settle_outbox() == 0


async def test_a_joining_engine_gets_its_symbols_orders_off_the_old_owner_first(
    make: Callable, ring: EngineRing, catalog: InstrumentCatalog
) -> None:
    ring.leave(M1, notify=False)  # only matching-0 is up: it owns TSLA for now
    desk, rehoming = make()
    placed = [
        (await desk.place(order(f"acct-{i}", f"k-{i}", quantity=2 + i, symbol=OF_M1))).order
        for i in range(3)
    ]
    assert ring.book(M0, OF_M1) == [(10_000, 9, 3)]

    ring.join(M1)  # TSLA moves from the live matching-0 to matching-1
    await rehoming.idle()

    assert ring.book(M0, OF_M1) == [], "nothing rests twice"
    assert ring.book(M1, OF_M1) == [(10_000, 9, 3)]
    moves = [call for call in ring.calls if call[2] in {o.order_id for o in placed}][3:]
    assert moves == [
        step for o in placed for step in ((M0, "cancel", o.order_id), (M1, "submit", o.order_id))
    ], "each order is taken off the old owner before it is submitted to the new one"
    assert [status(desk, o) for o in placed] == [(NEW, 0, 2), (NEW, 0, 3), (NEW, 0, 4)]
    assert ring.book(M0, OF_M0) == [], "a symbol that did not move is not touched"


async def test_a_resubmission_that_crosses_is_booked_exactly_once(
    make: Callable, ring: EngineRing, risk_book: RiskBook, clock: Clock
) -> None:
    desk, rehoming = make()
    buy = (await desk.place(order("alice", "a-1", quantity=10, price=10_000))).order
    since = clock()
    ring.leave(M0, notify=False)
    # Placed on the new owner while the move has not reached the buy yet.
    sell = (await desk.place(order("bob", "b-1", side=SELL, quantity=4, price=9_900))).order
    assert status(desk, sell) == (NEW, 0, 4)

    for _ in range(2):  # a second pass (another process, a retry) books nothing again
        assert await rehoming.rehome(OF_M0, M0, since_ns=since)

    assert status(desk, buy) == (PARTIAL, 4, 6)
    assert status(desk, sell) == (FILLED, 4, 0)
    [fill] = desk._store.fills(buy.order_id)
    assert (fill.quantity, fill.price, fill.aggressor) == (4, 9_900, True)
    assert len(desk._store.fills(sell.order_id)) == 1
    assert ring.book(M1, OF_M0) == [(10_000, 6, 1)]
    assert await desk.settle_outbox() == 0
    alice = risk_book.account("alice")
    assert alice.cash == 1_000_000_000 - 4 * 9_900
    assert alice.reserved_cash == 6 * 10_000
    assert [p.quantity for p in risk_book.account("bob").positions] == [-4]
    assert rehoming.outcomes == {Outcome.MOVED: 1}


async def test_an_order_placed_on_the_new_owner_during_the_move_stays_as_it_is(
    make: Callable, ring: EngineRing, clock: Clock
) -> None:
    desk, rehoming = make()
    ring.leave(M0, notify=False)
    placed = (await desk.place(order("alice", "a-1", quantity=10))).order  # on matching-1

    assert await rehoming.rehome(OF_M0, M0, since_ns=clock())

    assert rehoming.outcomes == {Outcome.ALREADY_THERE: 1}
    assert status(desk, placed) == (NEW, 0, 10)
    assert ring.book(M1, OF_M0) == [(10_000, 10, 1)]


async def test_an_order_the_new_owner_knew_before_it_moved_away_is_canceled_with_a_reason(
    make: Callable, ring: EngineRing, risk_book: RiskBook, caplog: pytest.LogCaptureFixture
) -> None:
    desk, rehoming = make()
    placed = (await desk.place(order("alice", "a-1", quantity=10))).order
    ring.leave(M0, crash=False)  # out of the ring but alive: its copy stays there
    await rehoming.idle()
    assert status(desk, placed) == (NEW, 0, 10)
    assert ring.book(M1, OF_M0) == [(10_000, 10, 1)]

    with caplog.at_level(logging.WARNING):
        ring.join(M0)  # AAPL back to matching-0, which already knows the order
        await rehoming.idle()

    assert f"order {placed.order_id} already known to engine {M0}" in caplog.text
    now = desk.get("alice", order_id=placed.order_id)
    assert (now.status, now.canceled_quantity) == (CANCELED, 10)
    assert "already knew this order" in now.reject_reason
    assert ring.book(M0, OF_M0) == [] and ring.book(M1, OF_M0) == [], "it rests nowhere"
    assert await desk.settle_outbox() == 0
    assert risk_book.account("alice").reserved_cash == 0, "its reservation is released"
    assert rehoming.outcomes == {Outcome.MOVED: 1, Outcome.CANCELED: 1}


async def test_a_move_waits_for_placements_that_may_still_trade_on_the_old_owner(
    make: Callable, ring: EngineRing
) -> None:
    desk, rehoming = make()
    maker = (await desk.place(order("alice", "a-1", quantity=10))).order
    answer = ring.ports[M0].faults.hold("submit")
    taker = asyncio.create_task(desk.place(order("bob", "b-1", side=SELL, quantity=10)))
    await until(lambda: ring.book(M0, OF_M0) == [])  # it traded; its answer is on the way

    ring.leave(M0, crash=False)  # draining: it still finishes the calls it has
    await asyncio.sleep(0.1)
    assert ring.book(M1, OF_M0) == [], "the move waits for the placement in flight"
    answer.set()
    await taker
    await rehoming.idle()

    assert status(desk, maker) == (FILLED, 10, 0)
    assert ring.book(M1, OF_M0) == [], "a filled order is not moved"
    assert not rehoming.outcomes


async def test_two_processes_rehoming_at_once_move_each_order_once_in_order(
    make: Callable, ring: EngineRing
) -> None:
    (desk, one), (_, two) = make(), make()
    placed = [
        (await desk.place(order(f"acct-{i}", f"k-{i}", quantity=1 + i))).order for i in range(5)
    ]

    ring.leave(M0)  # both processes see it and start moving AAPL
    await asyncio.gather(one.idle(), two.idle())

    submits = [oid for name, method, oid in ring.calls if name == M1 and method == "submit"]
    assert submits == [o.order_id for o in placed], "once each, oldest first"
    assert ring.book(M1, OF_M0) == [(10_000, 15, 5)]
    assert one.outcomes + two.outcomes == {Outcome.MOVED: 5}
    assert [status(desk, o)[0] for o in placed] == [NEW] * 5


async def test_a_move_whose_answer_was_lost_is_retried_and_moves_each_order_once(
    make: Callable, ring: EngineRing
) -> None:
    desk, rehoming = make()
    placed = [(await desk.place(order("alice", f"a-{i}", quantity=1 + i))).order for i in range(3)]
    # The first re-submission reaches matching-1 but its answer is lost.
    lost = Unavailable("matching engine unavailable: connection reset")
    ring.ports[M1].faults.fail("submit", lost, after_call=True)

    ring.leave(M0)
    await rehoming.idle()

    assert ring.book(M1, OF_M0) == [(10_000, 6, 3)]
    assert [status(desk, o) for o in placed] == [(NEW, 0, 1), (NEW, 0, 2), (NEW, 0, 3)]
    # The retry finds the first order known to matching-1 and never moved: it rests there.
    assert rehoming.outcomes == {Outcome.ALREADY_THERE: 1, Outcome.MOVED: 2}
