"""The PlaceOrder saga, cancels and queries over the real RiskBook and MatchingEngine."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest

from services.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unavailable,
)
from services.matching.engine import MatchingEngine
from services.model import OrderSpec, OrderStatus, OrderType, Side, TimeInForce
from services.orders.lifecycle import Order
from services.orders.placement import MAX_BATCH_ORDERS, OrderDesk, Placement
from services.orders.store import OrderStore
from services.risk.accounts import RiskBook
from tests.services.orders.support import (
    GRACE_SECONDS,
    Clock,
    InProcessMatching,
    InProcessRisk,
    order,
    until,
)

NEW, PARTIAL, FILLED = OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED
CANCELED, REJECTED = OrderStatus.CANCELED, OrderStatus.REJECTED
BUY, SELL, MARKET, IOC = 1, 2, 2, 2
CASH = 1_000_000_000  # AccountDefaults().initial_cash


def reserved(book: RiskBook, account: str) -> tuple[int, int, int]:
    """(reserved cash, units reserved by buys, units reserved by sells) of AAPL."""
    acct = book.account(account)
    pos = next((p for p in acct.positions if p.symbol == "AAPL"), None)
    return acct.reserved_cash, pos.reserved_buy if pos else 0, pos.reserved_sell if pos else 0


def position(book: RiskBook, account: str) -> int:
    pos = [p.quantity for p in book.account(account).positions if p.symbol == "AAPL"]
    return pos[0] if pos else 0


async def settle_loop_is_idle(desk: OrderDesk) -> None:
    assert await desk.settle_outbox() == 0


# -- the happy paths -------------------------------------------------------------


async def test_a_resting_order_is_new_and_holds_its_reservation(
    desk: OrderDesk, risk_book: RiskBook, engine: MatchingEngine
) -> None:
    placed = await desk.place(order(quantity=10, price=10_000))

    assert not placed.replayed and placed.fills == ()
    got = placed.order
    assert (got.status, got.filled_quantity, got.open_quantity) == (NEW, 0, 10)
    assert got.spec == OrderSpec("AAPL", Side.BUY, OrderType.LIMIT, TimeInForce.GTC, 10, 10_000)
    assert reserved(risk_book, "alice") == (100_000, 10, 0)
    assert [(lvl.price, lvl.quantity) for lvl in engine.book("AAPL").bids] == [(10_000, 10)]
    assert desk.get("alice", order_id=got.order_id) == got
    await settle_loop_is_idle(desk)


async def test_a_crossing_order_fills_both_sides_and_books_them_at_risk(
    desk: OrderDesk, risk_book: RiskBook
) -> None:
    maker = (await desk.place(order("bob", "s-1", side=SELL, quantity=10))).order
    taker = await desk.place(order("alice", "b-1", quantity=4, price=10_100))

    assert (taker.order.status, taker.order.filled_quantity) == (FILLED, 4)
    assert taker.order.filled_notional == 4 * 10_000, "trades at the maker's price"
    [fill] = taker.fills
    assert (fill.order_id, fill.quantity, fill.price, fill.aggressor) == (
        taker.order.order_id,
        4,
        10_000,
        True,
    )
    bob = desk.get("bob", order_id=maker.order_id)
    assert (bob.status, bob.filled_quantity, bob.open_quantity) == (PARTIAL, 4, 6)

    assert await desk.settled()  # risk settles after the answer
    # Risk booked both sides; alice's unused price improvement was released.
    assert (risk_book.account("alice").cash, position(risk_book, "alice")) == (CASH - 40_000, 4)
    assert reserved(risk_book, "alice") == (0, 0, 0)
    assert (position(risk_book, "bob"), reserved(risk_book, "bob")) == (-4, (0, 0, 6))
    await settle_loop_is_idle(desk)


async def test_an_ioc_rest_is_canceled_and_released(desk: OrderDesk, risk_book: RiskBook) -> None:
    await desk.place(order("bob", "s-1", side=SELL, quantity=3))
    placed = await desk.place(order("alice", "b-1", quantity=10, tif=IOC))

    assert (placed.order.status, placed.order.filled_quantity) == (CANCELED, 3)
    assert placed.order.canceled_quantity == 7 and placed.order.is_settled
    assert await desk.settled()
    assert position(risk_book, "alice") == 3
    assert reserved(risk_book, "alice") == (0, 0, 0)


async def test_a_market_order_with_nothing_to_take_is_canceled_not_rejected(
    desk: OrderDesk, risk_book: RiskBook
) -> None:
    placed = await desk.place(order(type=MARKET, price=0, quantity=5))
    assert placed.order.spec.time_in_force is TimeInForce.IOC
    assert (placed.order.status, placed.order.filled_quantity) == (CANCELED, 0)
    assert await desk.settled()
    assert reserved(risk_book, "alice") == (0, 0, 0)


# -- validation and idempotency -----------------------------------------------------


async def test_every_invalid_field_is_named_in_one_error(
    desk: OrderDesk, risk: InProcessRisk
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await desk.place(order("bad account!", "", symbol="NOPE", quantity=0))
    fields = [v.field for v in caught.value.violations]
    assert fields == ["symbol", "quantity", "account_id", "client_order_id"]
    assert "unknown symbol 'NOPE'" in caught.value.message
    assert risk.faults.calls == [], "nothing invalid goes downstream"


async def test_the_same_key_with_the_same_order_replays_the_first_result(
    desk: OrderDesk, risk: InProcessRisk, engine: MatchingEngine
) -> None:
    await desk.place(order("bob", "s-1", side=SELL, quantity=2))
    first = await desk.place(order(quantity=10))
    again = await desk.place(order(quantity=10, tif=1))  # GTC is what unspecified means

    assert again.replayed and not first.replayed
    assert again.order == first.order and again.fills == first.fills and len(again.fills) == 1
    assert risk.faults.calls.count("reserve") == 2, "one reserve per order, none for the replay"
    assert [(lvl.price, lvl.quantity) for lvl in engine.book("AAPL").bids] == [(10_000, 8)]


async def test_the_same_key_with_a_different_order_names_the_existing_one(
    desk: OrderDesk,
) -> None:
    first = await desk.place(order(quantity=10))
    with pytest.raises(AlreadyExists, match=first.order.order_id):
        await desk.place(order(quantity=11))
    other = await desk.place(order("bob", quantity=11))  # keys are per account
    assert other.order.order_id != first.order.order_id


async def test_concurrent_duplicates_wait_for_the_first(
    desk: OrderDesk, risk: InProcessRisk
) -> None:
    results = await asyncio.gather(
        desk.place(order(quantity=10)),
        desk.place(order(quantity=10)),
        desk.place(order(quantity=99)),
        return_exceptions=True,
    )
    first, second, different = results
    assert isinstance(first, Placement) and isinstance(second, Placement)
    assert first.order == second.order
    assert (first.replayed, second.replayed) == (False, True)
    assert isinstance(different, AlreadyExists) and first.order.order_id in different.message
    assert risk.faults.calls.count("reserve") == 1


async def test_another_worker_with_the_same_key_is_told_to_retry_then_replays(
    make_desk: Callable[..., OrderDesk], store: OrderStore, db_path, matching: InProcessMatching
) -> None:
    worker_a = make_desk(store)
    other_store = OrderStore(db_path)
    worker_b = make_desk(other_store)
    try:
        gate = matching.faults.hold("submit")
        placing = asyncio.create_task(worker_a.place(order()))
        await until(lambda: "submit" in matching.faults.calls)
        with pytest.raises(Unavailable, match="still being placed; retry with the same"):
            await worker_b.place(order())
        gate.set()
        first = await placing
        replay = await worker_b.place(order())
        assert replay.replayed and replay.order == first.order
    finally:
        other_store.close()


# -- risk refusals and failures ---------------------------------------------------


async def test_a_risk_rejection_is_stored_and_replayed_with_the_same_error(
    desk: OrderDesk, matching: InProcessMatching
) -> None:
    too_big = order(quantity=100_001, price=100)
    with pytest.raises(FailedPrecondition) as caught:
        await desk.place(too_big)
    assert caught.value.message.startswith("max_order_quantity:")
    assert "alice" in caught.value.message
    assert matching.faults.calls == [], "a rejected order never reaches the book"

    stored = desk.get("alice", client_order_id="c-1")
    assert (stored.status, stored.reject_reason) == (REJECTED, caught.value.message)
    with pytest.raises(FailedPrecondition) as replayed:
        await desk.place(too_big)
    assert replayed.value.message == caught.value.message
    assert desk._store.releases_due() == [], "nothing was reserved, nothing to release"


async def test_a_lost_reserve_reply_rejects_the_order_and_releases_the_reservation(
    desk: OrderDesk, risk: InProcessRisk, risk_book: RiskBook, matching: InProcessMatching
) -> None:
    risk.faults.fail("reserve", Unavailable("deadline exceeded"), after_call=True)
    with pytest.raises(Unavailable) as caught:
        await desk.place(order())
    assert "risk service unavailable: deadline exceeded" in caught.value.message
    assert "place it again with a new client_order_id" in caught.value.message
    assert reserved(risk_book, "alice") == (0, 0, 0), "the reserve that did happen was released"
    assert matching.faults.calls == []
    assert desk.get("alice", client_order_id="c-1").status is REJECTED
    with pytest.raises(Unavailable) as replayed:
        await desk.place(order())
    assert replayed.value.message == caught.value.message


# -- matching failures: compensation ------------------------------------------------


async def test_an_unreachable_engine_is_compensated_and_nothing_stays_reserved(
    desk: OrderDesk, risk_book: RiskBook, matching: InProcessMatching, engine: MatchingEngine
) -> None:
    matching.faults.fail("submit", Unavailable("connection refused"))
    with pytest.raises(Unavailable) as caught:
        await desk.place(order())
    assert caught.value.message.startswith("matching engine unavailable: connection refused")

    stored = desk.get("alice", client_order_id="c-1")
    assert (stored.status, stored.filled_quantity) == (REJECTED, 0)
    assert reserved(risk_book, "alice") == (0, 0, 0)
    assert matching.faults.calls == ["submit", "cancel", "submit"]
    # A submit that arrives late is never booked: the engine remembers the cancel.
    late = engine.submit(
        order_id=stored.order_id,
        account_id="alice",
        symbol="AAPL",
        side=1,
        type=1,
        time_in_force=1,
        quantity=10,
        price=10_000,
    )
    assert late.status is CANCELED and engine.book("AAPL").bids == ()
    with pytest.raises(Unavailable) as replayed:
        await desk.place(order())
    assert replayed.value.message == caught.value.message


async def test_a_lost_submit_reply_that_traded_records_the_trades(
    desk: OrderDesk, risk_book: RiskBook, matching: InProcessMatching
) -> None:
    maker = (await desk.place(order("bob", "s-1", side=SELL, quantity=4))).order
    matching.faults.fail("submit", Unavailable("deadline exceeded"), after_call=True)

    placed = await desk.place(order("alice", "b-1", quantity=10))

    # It traded 4 before its reply was lost; the unwinding took the other 6 off.
    assert (placed.order.status, placed.order.filled_quantity) == (CANCELED, 4)
    assert placed.order.canceled_quantity == 6 and len(placed.fills) == 1
    assert desk.get("bob", order_id=maker.order_id).status is FILLED
    assert (position(risk_book, "alice"), reserved(risk_book, "alice")) == (4, (0, 0, 0))
    assert (position(risk_book, "bob"), reserved(risk_book, "bob")) == (-4, (0, 0, 0))


async def test_a_failed_unwinding_leaves_the_order_pending_until_recovery(
    desk: OrderDesk,
    risk_book: RiskBook,
    matching: InProcessMatching,
    clock: Clock,
    engine: MatchingEngine,
) -> None:
    matching.faults.fail("submit", Unavailable("deadline exceeded"), after_call=True)
    matching.faults.fail("cancel", Unavailable("connection refused"))
    with pytest.raises(Unavailable, match="is being unwound: retry with the same"):
        await desk.place(order())

    pending = desk.get("alice", client_order_id="c-1")
    assert pending.is_pending and pending.error_code == "UNAVAILABLE"
    assert reserved(risk_book, "alice") == (100_000, 10, 0), "held until unwound"
    with pytest.raises(Unavailable, match="still being placed"):
        await desk.place(order())
    with pytest.raises(Unavailable, match="still being placed"):
        await desk.cancel("alice", client_order_id="c-1")

    assert await desk.recover_pending() == 0
    assert desk.get("alice", client_order_id="c-1").is_pending, "too young: maybe in progress"

    clock.advance(GRACE_SECONDS + 1)
    assert await desk.recover_pending() == 0
    rejected = desk.get("alice", client_order_id="c-1")
    assert rejected.status is REJECTED and rejected.reject_reason == pending.reject_reason
    assert reserved(risk_book, "alice") == (0, 0, 0)
    assert engine.book("AAPL").bids == (), "the order that did rest was taken off"
    with pytest.raises(Unavailable, match="was rejected, nothing traded"):
        await desk.place(order())


async def test_recovery_keeps_retrying_while_the_engine_is_down(
    desk: OrderDesk, matching: InProcessMatching, clock: Clock
) -> None:
    matching.faults.fail("submit", Unavailable("down"))
    matching.faults.fail("cancel", Unavailable("down"), times=2)
    with pytest.raises(Unavailable):
        await desk.place(order())
    clock.advance(GRACE_SECONDS + 1)
    assert await desk.recover_pending() == 1
    assert await desk.recover_pending() == 0
    assert desk.get("alice", client_order_id="c-1").status is REJECTED


async def test_pending_orders_left_by_a_crash_are_recovered_at_startup(
    make_desk: Callable[..., OrderDesk],
    db_path,
    risk_book: RiskBook,
    engine: MatchingEngine,
    clock: Clock,
) -> None:
    before = OrderStore(db_path)
    maker = (await make_desk(before).place(order("bob", "s-1", side=SELL, quantity=4))).order
    # A crash after the engine traded the order but before its result was stored ...
    traded = Order.pending(
        order_id="crashed-1",
        account_id="alice",
        client_order_id="b-1",
        spec=OrderSpec("AAPL", Side.BUY, OrderType.LIMIT, TimeInForce.GTC, 10, 10_000),
        now_ns=clock(),
    )
    before.insert(traded)
    risk_book.reserve(
        reservation_id="crashed-1",
        account_id="alice",
        symbol="AAPL",
        side=1,
        quantity=10,
        price=10_000,
    )
    engine.submit(
        order_id="crashed-1",
        account_id="alice",
        symbol="AAPL",
        side=1,
        type=1,
        time_in_force=1,
        quantity=10,
        price=10_000,
    )
    # ... and one after the intent was stored, before anything else happened.
    before.insert(
        Order.pending(
            order_id="crashed-2",
            account_id="alice",
            client_order_id="b-2",
            spec=traded.spec,
            now_ns=clock(),
        )
    )
    before.close()

    clock.advance(GRACE_SECONDS + 1)
    after = OrderStore(db_path)
    try:
        restarted = make_desk(after)
        assert await restarted.recover_pending() == 0

        recovered = restarted.get("alice", order_id="crashed-1")
        assert (recovered.status, recovered.filled_quantity, recovered.canceled_quantity) == (
            CANCELED,
            4,
            6,
        )
        assert restarted.get("bob", order_id=maker.order_id).status is FILLED
        assert restarted.get("alice", order_id="crashed-2").status is REJECTED
        assert (position(risk_book, "alice"), reserved(risk_book, "alice")) == (4, (0, 0, 0))
        assert position(risk_book, "bob") == -4
        assert engine.book("AAPL").bids == ()
        replay = await restarted.place(order("alice", "b-1", quantity=10))
        assert replay.replayed and replay.order == recovered and len(replay.fills) == 1
    finally:
        after.close()


# -- the risk outbox ---------------------------------------------------------------


async def test_fills_risk_did_not_confirm_are_retried_before_the_release(
    desk: OrderDesk, risk: InProcessRisk, risk_book: RiskBook
) -> None:
    await desk.place(order("bob", "s-1", side=SELL, quantity=4))
    risk.faults.fail("apply_fill", Unavailable("risk restarting"), times=1)

    placed = await desk.place(order("alice", "b-1", quantity=4, price=10_100))

    assert placed.order.status is FILLED, "the placement itself succeeded"
    assert await desk.settled()
    assert position(risk_book, "alice") == 0
    assert reserved(risk_book, "alice") == (40_400, 4, 0), "held until its fill is applied"
    assert await desk.settle_outbox() == 0
    assert position(risk_book, "alice") == 4 and position(risk_book, "bob") == -4
    assert reserved(risk_book, "alice") == (0, 0, 0)


async def test_a_fill_recorded_after_its_order_was_canceled_still_reaches_risk(
    desk: OrderDesk,
    risk_book: RiskBook,
    matching: InProcessMatching,
    engine: MatchingEngine,
    caplog: pytest.LogCaptureFixture,
) -> None:
    maker = (await desk.place(order("bob", "s-1", side=SELL, quantity=10))).order
    gate = matching.faults.hold("submit")
    taking = asyncio.create_task(desk.place(order("alice", "b-1", quantity=4)))
    await until(lambda: engine.book("AAPL").asks[0].quantity == 6)  # traded, reply held

    # The cancel reaches the book after the trade, but is stored before it.
    canceled = await desk.cancel("bob", order_id=maker.order_id)
    assert canceled.canceled_quantity == 6
    assert (canceled.order.status, canceled.order.open_quantity) == (CANCELED, 4)
    # Release gives back all a reservation holds, so it waits for the fill still to come.
    assert reserved(risk_book, "bob") == (0, 0, 10)

    gate.set()
    with caplog.at_level(logging.WARNING):
        await taking
        assert await desk.settled()
    bob = desk.get("bob", order_id=maker.order_id)
    assert (bob.status, bob.filled_quantity, bob.is_settled) == (CANCELED, 4, True)
    assert (position(risk_book, "bob"), reserved(risk_book, "bob")) == (-4, (0, 0, 0))
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    await settle_loop_is_idle(desk)


async def test_a_settled_order_is_released_only_after_its_fills_reach_risk(
    desk: OrderDesk,
    risk: InProcessRisk,
    risk_book: RiskBook,
    caplog: pytest.LogCaptureFixture,
) -> None:
    maker = (await desk.place(order("bob", "s-1", side=SELL, quantity=10))).order
    gate = risk.faults.hold("apply_fill")  # the taker's settlement stalls at its first fill
    taking = asyncio.create_task(desk.place(order("alice", "b-1", quantity=4)))
    await until(lambda: "apply_fill" in risk.faults.calls and position(risk_book, "alice") == 4)
    assert taking.done(), "PlaceOrder answered before settling"

    # Both fills are stored; bob's is still to be applied when his cancel settles him.
    canceled = await desk.cancel("bob", order_id=maker.order_id)
    assert canceled.order.is_settled and canceled.canceled_quantity == 6
    assert reserved(risk_book, "bob") == (0, 0, 10), "no release while a fill is due"

    gate.set()
    with caplog.at_level(logging.WARNING):
        await taking
        assert await desk.settled()
    assert (position(risk_book, "bob"), reserved(risk_book, "bob")) == (-4, (0, 0, 0))
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    await settle_loop_is_idle(desk)


# -- cancel ------------------------------------------------------------------------


async def test_cancel_takes_the_rest_off_the_book_and_releases_it(
    desk: OrderDesk, risk_book: RiskBook, engine: MatchingEngine
) -> None:
    await desk.place(order("bob", "s-1", side=SELL, quantity=3))
    placed = await desk.place(order("alice", "b-1", quantity=10))

    canceled = await desk.cancel("alice", client_order_id="b-1")
    assert canceled.canceled_quantity == 7
    assert (canceled.order.status, canceled.order.filled_quantity) == (CANCELED, 3)
    assert engine.book("AAPL").bids == ()
    assert await desk.settled()  # the release waits for the fill's settlement
    assert reserved(risk_book, "alice") == (0, 0, 0)

    again = await desk.cancel("alice", order_id=placed.order.order_id)
    assert (again.canceled_quantity, again.order) == (0, canceled.order)


async def test_concurrent_cancels_of_one_order_share_one_engine_call(
    desk: OrderDesk, matching: InProcessMatching
) -> None:
    placed = await desk.place(order())
    first, second = await asyncio.gather(
        desk.cancel("alice", order_id=placed.order.order_id),
        desk.cancel("alice", client_order_id="c-1"),
    )
    assert first == second and first.canceled_quantity == 10
    assert matching.faults.calls.count("cancel") == 1


async def test_a_final_order_cannot_be_canceled(desk: OrderDesk) -> None:
    await desk.place(order("bob", "s-1", side=SELL, quantity=10))
    filled = (await desk.place(order("alice", "b-1", quantity=10))).order
    with pytest.raises(FailedPrecondition) as caught:
        await desk.cancel("alice", order_id=filled.order_id)
    assert caught.value.message == f"order {filled.order_id} is FILLED; nothing left to cancel"

    with pytest.raises(FailedPrecondition):
        await desk.place(order("alice", "big", quantity=100_001))
    with pytest.raises(FailedPrecondition, match="is REJECTED; nothing left to cancel"):
        await desk.cancel("alice", client_order_id="big")


async def test_cancel_of_an_unknown_or_foreign_order_is_not_found(desk: OrderDesk) -> None:
    placed = await desk.place(order("alice"))
    with pytest.raises(NotFound, match="account bob has no order"):
        await desk.cancel("bob", order_id=placed.order.order_id)
    with pytest.raises(NotFound):
        await desk.cancel("alice", client_order_id="nope")
    with pytest.raises(InvalidArgument, match="set order_id or client_order_id"):
        await desk.cancel("alice")


async def test_an_engine_outage_fails_the_cancel_and_changes_nothing(
    desk: OrderDesk, matching: InProcessMatching, risk_book: RiskBook
) -> None:
    placed = await desk.place(order())
    matching.faults.fail("cancel", Unavailable("down"))
    with pytest.raises(Unavailable):
        await desk.cancel("alice", order_id=placed.order.order_id)
    assert desk.get("alice", order_id=placed.order.order_id) == placed.order
    assert reserved(risk_book, "alice") == (100_000, 10, 0)


# -- queries -----------------------------------------------------------------------


async def test_list_orders_pages_newest_first(desk: OrderDesk) -> None:
    ids = [
        (await desk.place(order(key=f"c-{i}", price=10_000 + i))).order.order_id for i in range(5)
    ]
    await desk.place(order("bob", "other"))

    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        page = desk.list_orders("alice", page_size=2, page_token=token)
        seen += [o.order_id for o in page.orders]
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert seen == ids[::-1] and pages == 3
    assert len(desk.list_orders("alice").orders) == 5, "page_size 0 means 100"


async def test_list_orders_filters_by_symbol_and_status(desk: OrderDesk) -> None:
    working = (await desk.place(order(key="w", symbol="MSFT"))).order
    rejected = await asyncio.gather(
        desk.place(order(key="r", quantity=100_001)), return_exceptions=True
    )
    assert isinstance(rejected[0], FailedPrecondition)
    await desk.place(order(key="a"))

    msft = desk.list_orders("alice", symbol="MSFT")
    assert [o.order_id for o in msft.orders] == [working.order_id]
    by_status = desk.list_orders("alice", statuses=[int(REJECTED)])
    assert [o.client_order_id for o in by_status.orders] == ["r"]
    both = desk.list_orders("alice", statuses=[int(REJECTED), int(NEW)], page_size=1)
    assert [o.client_order_id for o in both.orders] == ["a"]
    rest = desk.list_orders(
        "alice", statuses=[int(NEW), int(REJECTED)], page_size=5, page_token=both.next_page_token
    )
    assert [o.client_order_id for o in rest.orders] == ["r", "w"], "status order does not matter"


async def test_list_orders_refuses_bad_paging(desk: OrderDesk) -> None:
    for i in range(3):
        await desk.place(order(key=f"c-{i}"))
    token = desk.list_orders("alice", page_size=1).next_page_token
    assert token

    with pytest.raises(InvalidArgument, match="was issued for other filters"):
        desk.list_orders("alice", symbol="AAPL", page_token=token)
    with pytest.raises(InvalidArgument, match="is not a token this service issued"):
        desk.list_orders("alice", page_token="not-a-token")
    with pytest.raises(InvalidArgument) as caught:
        desk.list_orders("", symbol="NOPE", statuses=[0, 9], page_size=1001)
    fields = [v.field for v in caught.value.violations]
    assert fields == ["account_id", "symbol", "statuses[0]", "statuses[1]", "page_size"]


async def test_get_finds_an_order_by_either_id_within_its_account(desk: OrderDesk) -> None:
    placed = (await desk.place(order())).order
    assert desk.get("alice", client_order_id="c-1") == placed
    with pytest.raises(NotFound):
        desk.get("bob", order_id=placed.order_id)
    with pytest.raises(NotFound, match="no client_order_id nope"):
        desk.get("alice", client_order_id="nope")


async def test_acknowledged_orders_survive_a_new_process_on_the_same_file(
    make_desk: Callable[..., OrderDesk], db_path
) -> None:
    first_store = OrderStore(db_path)
    first = make_desk(first_store)
    await first.place(order("bob", "s-1", side=SELL, quantity=4))
    placed = await first.place(order("alice", "b-1", quantity=10))
    listed = first.list_orders("alice")
    first_store.close()

    second_store = OrderStore(db_path)
    try:
        second = make_desk(second_store)
        assert second.get("alice", order_id=placed.order.order_id) == placed.order
        assert second.list_orders("alice") == listed
        replay = await second.place(order("alice", "b-1", quantity=10))
        assert replay.replayed and (replay.order, replay.fills) == (placed.order, placed.fills)
    finally:
        second_store.close()


# -- OrderEntry batches ------------------------------------------------------------


async def test_a_batch_places_each_order_in_turn_and_fails_them_alone(desk: OrderDesk) -> None:
    outcomes = await desk.place_batch(
        [
            order(key="a"),
            order(key="b", quantity=0),
            order(key="a"),
            order(key="c", quantity=100_001),
        ]
    )
    first, invalid, replay, refused = outcomes
    assert isinstance(first, Placement) and not first.replayed
    assert isinstance(invalid, InvalidArgument)
    assert [v.field for v in invalid.violations] == ["quantity"]
    assert isinstance(replay, Placement) and replay.replayed
    assert replay.order.order_id == first.order.order_id
    assert isinstance(refused, FailedPrecondition)


async def test_a_batch_above_the_limit_places_nothing(desk: OrderDesk, risk: InProcessRisk) -> None:
    outcomes = await desk.place_batch([order(key=f"k{i}") for i in range(MAX_BATCH_ORDERS + 1)])
    assert len(outcomes) == MAX_BATCH_ORDERS + 1
    assert all(isinstance(o, InvalidArgument) for o in outcomes)
    assert "at most 1000 orders, got 1001" in outcomes[0].message
    assert risk.faults.calls == [] and desk.list_orders("alice").orders == ()


async def test_a_filled_order_holds_nothing_and_sends_no_release(
    desk: OrderDesk, risk: InProcessRisk, risk_book: RiskBook
) -> None:
    await desk.place(order("bob", "s-1", side=SELL, quantity=10))
    before = risk.faults.calls.count("release")
    taker = await desk.place(order("alice", "b-1", quantity=4, price=10_100))

    assert taker.order.status is FILLED
    assert await desk.settled()
    assert risk.faults.calls.count("release") == before, "ApplyFill emptied the reservation"
    assert reserved(risk_book, "alice") == (0, 0, 0), "the price improvement went back too"
    assert desk._store.releases_due() == [], "the release is recorded as done"
    await settle_loop_is_idle(desk)


async def test_a_batch_runs_accounts_concurrently_and_each_account_in_order(
    desk: OrderDesk, risk: InProcessRisk
) -> None:
    gate = risk.faults.hold("reserve")  # alice's first order stalls at its reserve
    batch = asyncio.create_task(
        desk.place_batch(
            [
                order("alice", "a-1", quantity=5),
                order("bob", "b-1", quantity=6),
                order("alice", "a-2", quantity=7),
                order("carol", "c-1", quantity=8),
            ]
        )
    )
    # bob and carol go ahead; alice's second order waits for her first.
    await until(lambda: risk.faults.calls.count("reserve") == 3)
    await until(lambda: len(desk.list_orders("carol").orders) == 1)
    assert [o.client_order_id for o in desk.list_orders("alice").orders] == ["a-1"]
    assert not batch.done()

    gate.set()
    outcomes = await batch
    assert [o.order.client_order_id for o in outcomes if isinstance(o, Placement)] == [
        "a-1",
        "b-1",
        "a-2",
        "c-1",
    ], "results in request order"
    assert [o.order.spec.quantity for o in outcomes if isinstance(o, Placement)] == [5, 6, 7, 8]
    assert risk.faults.calls.count("reserve") == 4


async def test_concurrent_settlements_share_settle_calls_and_transactions(
    desk: OrderDesk, risk: InProcessRisk, risk_book: RiskBook
) -> None:
    makers = [order(f"seller-{i}", f"s-{i}", side=SELL, quantity=2) for i in range(40)]
    assert all(isinstance(o, Placement) for o in await desk.place_batch(makers))
    marks_before = desk._settlement._marks.transactions
    calls_before = len(risk.settle_calls)

    takers = [order(f"buyer-{i}", f"b-{i}", quantity=2) for i in range(40)]
    outcomes = await desk.place_batch(takers)
    assert await desk.settled()

    assert all(isinstance(o, Placement) and o.order.status is FILLED for o in outcomes)
    calls = risk.settle_calls[calls_before:]
    assert sum(calls) == 80, "every fill settled once (taker and maker)"
    assert len(calls) < 20, f"settlements shared Settle calls: {calls}"
    assert desk._settlement._marks.transactions - marks_before < 20
    for i in range(40):
        assert (position(risk_book, f"buyer-{i}"), reserved(risk_book, f"buyer-{i}")) == (
            2,
            (0, 0, 0),
        )
        assert (position(risk_book, f"seller-{i}"), reserved(risk_book, f"seller-{i}")) == (
            -2,
            (0, 0, 0),
        )
    await settle_loop_is_idle(desk)


async def test_a_drain_waits_for_settlements_within_its_bound(
    desk: OrderDesk, risk: InProcessRisk, risk_book: RiskBook, caplog: pytest.LogCaptureFixture
) -> None:
    await desk.place(order("bob", "s-1", side=SELL, quantity=4))
    gate = risk.faults.hold("apply_fill")
    placed = await desk.place(order("alice", "b-1", quantity=4))
    assert placed.order.status is FILLED

    with caplog.at_level(logging.WARNING):
        await desk.drain(settle_seconds=0.05)
    assert "risk settlements still running after 0.1 s" in caplog.text
    assert desk._store.outbox_backlog() > 0, "what did not settle stays due"

    gate.set()
    await desk.drain()
    assert desk._store.outbox_backlog() == 0
    assert (position(risk_book, "alice"), reserved(risk_book, "alice")) == (4, (0, 0, 0))


async def test_a_taker_answers_each_of_its_fills_in_trade_order_as_the_store_has_them(
    desk: OrderDesk, store: OrderStore
) -> None:
    await desk.place(order("bob", "s-1", side=SELL, quantity=3, price=10_000))
    await desk.place(order("carol", "s-1", side=SELL, quantity=2, price=10_001))
    taker = await desk.place(order("alice", "b-1", quantity=5, price=10_100))

    assert [(f.quantity, f.price, f.aggressor) for f in taker.fills] == [
        (3, 10_000, True),
        (2, 10_001, True),
    ]
    assert taker.fills == tuple(store.fills(taker.order.order_id, aggressor_only=True))
    assert await desk.settled()
