"""The SQLite order store: round trips, durability, the key, paging, the outbox and
the order event log."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from services.model import OrderSpec, OrderStatus, OrderType, Side, TimeInForce
from services.orders.events import OrderEvent, OrderEventType
from services.orders.lifecycle import Fill, Order
from services.orders.store import NEW_FILE_PAGE_SIZE, WAL_CHECKPOINT_BYTES, OrderStore, Outbox

SPEC = OrderSpec("AAPL", Side.BUY, OrderType.LIMIT, TimeInForce.GTC, 10, 10_000)


def new_order(
    order_id: str = "o-1",
    *,
    key: str = "",
    account: str = "alice",
    created: int = 1_000,
    spec: OrderSpec = SPEC,
) -> Order:
    return Order.pending(
        order_id=order_id,
        account_id=account,
        client_order_id=key or f"c-{order_id}",
        spec=spec,
        now_ns=created,
    )


def fill(trade: str = "t-1", order_id: str = "o-1", qty: int = 4) -> Fill:
    return Fill(trade, order_id, 10_000, qty, True, 5_000)


def test_an_order_round_trips_field_for_field(store: OrderStore) -> None:
    pending = new_order()
    assert store.insert(pending) == pending
    assert store.get("o-1") == pending and store.get("o-1").status is None

    done = pending.accept(2_000).fill(4, 9_900, 3_000).cancel(6, 4_000)
    with store.transaction():
        store.update(done)
    assert store.get("o-1") == done
    assert store.find("alice", order_id="o-1") == done
    assert store.find("alice", client_order_id="c-o-1") == done
    assert store.find("bob", order_id="o-1") is None, "another account's order is not found"


def test_the_idempotency_key_is_unique_per_account(store: OrderStore) -> None:
    first = new_order("o-1", key="same")
    store.insert(first)
    assert store.insert(new_order("o-2", key="same")) == first, "the holder of the key wins"
    assert store.get("o-2") is None
    other_account = new_order("o-3", key="same", account="bob")
    assert store.insert(other_account) == other_account


def test_everything_committed_survives_a_reopen(db_path: Path) -> None:
    store = OrderStore(db_path)
    order = new_order().accept(2_000)
    store.insert(new_order())
    with store.transaction():
        store.update(order.fill(4, 10_000, 3_000))
        store.add_fill(fill())
    store.close()

    reopened = OrderStore(db_path)
    try:
        assert reopened.get("o-1") == order.fill(4, 10_000, 3_000)
        assert reopened.fills("o-1") == [fill()]
    finally:
        reopened.close()


def test_the_store_creates_its_directory_and_runs_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "var" / "orders.db"
    store = OrderStore(path)
    try:
        assert path.exists()
        assert store._db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert store._db.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL
    finally:
        store.close()


def test_a_new_file_gets_small_pages_and_an_existing_one_keeps_its_own(tmp_path: Path) -> None:
    fresh = OrderStore(tmp_path / "new.db")
    try:
        assert fresh._db.execute("PRAGMA page_size").fetchone() == (NEW_FILE_PAGE_SIZE,)
        # Checkpoints come after as many WAL bytes as before, whatever the page size.
        assert fresh._db.execute("PRAGMA wal_autocheckpoint").fetchone() == (
            WAL_CHECKPOINT_BYTES // NEW_FILE_PAGE_SIZE,
        )
    finally:
        fresh.close()
    old_path = tmp_path / "old.db"
    old = sqlite3.connect(old_path)
    old.executescript(
        "PRAGMA page_size = 4096; PRAGMA journal_mode = WAL;"
        "CREATE TABLE order_events (seq INTEGER PRIMARY KEY AUTOINCREMENT, account_id TEXT"
        " NOT NULL, type INTEGER NOT NULL, order_json TEXT NOT NULL, trade_id TEXT,"
        " fill_price INTEGER, fill_quantity INTEGER, fill_aggressor INTEGER, fill_ts_ns INTEGER,"
        " created_at_ns INTEGER NOT NULL);"
        "CREATE INDEX order_events_by_account ON order_events (account_id, seq);"
    )
    old.close()
    reopened = OrderStore(old_path)
    try:
        assert reopened._db.execute("PRAGMA page_size").fetchone() == (4096,)
        assert reopened._db.execute("PRAGMA wal_autocheckpoint").fetchone() == (1000,)
        indexes = {row[1] for row in reopened._db.execute("PRAGMA index_list(order_events)")}
        assert "order_events_by_account" not in indexes, "an index nothing reads is dropped"
        reopened.insert(new_order())
        with reopened.transaction():
            reopened.append_events([OrderEvent(OrderEventType.ACCEPTED, new_order())], now_ns=9)
        assert [seq for seq, _ in reopened.events_after(0, 10)] == [1]
    finally:
        reopened.close()


def test_two_connections_on_one_file_see_each_others_commits(
    store: OrderStore, db_path: Path
) -> None:
    other_worker = OrderStore(db_path)
    try:
        store.insert(new_order("o-1", key="k"))
        assert other_worker.get("o-1") is not None
        assert other_worker.insert(new_order("o-2", key="k")).order_id == "o-1"
    finally:
        other_worker.close()


def test_a_fill_is_recorded_once(store: OrderStore) -> None:
    store.insert(new_order())
    assert store.add_fill(fill())
    assert not store.add_fill(fill()), "the same (trade_id, order_id) again is a no-op"
    assert store.has_fill(fill()) and not store.has_fill(fill("t-2"))
    assert store.fills("o-1") == [fill()]


def test_a_failed_transaction_leaves_nothing_behind(store: OrderStore) -> None:
    store.insert(new_order())
    with pytest.raises(ZeroDivisionError), store.transaction():
        store.update(new_order().accept(2_000))
        store.add_fill(fill())
        _ = 1 / 0
    assert store.get("o-1") == new_order() and store.fills("o-1") == []


def test_transactions_do_not_nest(store: OrderStore) -> None:
    with store.transaction(), pytest.raises(RuntimeError, match="do not nest"):  # noqa: SIM117
        with store.transaction():
            pass


def test_pages_are_newest_first_and_continue_after_the_cursor(store: OrderStore) -> None:
    for i in range(5):
        store.insert(new_order(f"o-{i}", created=1_000 + i))
    store.insert(new_order("x-0", created=1_004, account="bob"))
    store.insert(new_order("o-9", created=1_004))  # same time as o-4: order_id breaks the tie

    first = store.page("alice", limit=3)
    assert [o.order_id for o in first] == ["o-9", "o-4", "o-3"]
    last = first[-1]
    rest = store.page("alice", after=(last.created_at_ns, last.order_id), limit=10)
    assert [o.order_id for o in rest] == ["o-2", "o-1", "o-0"]


def test_pages_filter_by_symbol_and_status(store: OrderStore) -> None:
    msft = OrderSpec("MSFT", Side.SELL, OrderType.LIMIT, TimeInForce.GTC, 5, 20_000)
    store.insert(new_order("o-1", created=1))
    store.insert(new_order("o-2", created=2, spec=msft))
    store.insert(new_order("o-3", created=3, spec=msft))
    with store.transaction():
        store.update(new_order("o-3", created=3, spec=msft).accept(4))

    assert [o.order_id for o in store.page("alice", symbol="MSFT", limit=10)] == ["o-3", "o-2"]
    new = store.page("alice", statuses=[OrderStatus.NEW], limit=10)
    assert [o.order_id for o in new] == ["o-3"]
    assert store.page("alice", symbol="AAPL", statuses=[OrderStatus.NEW], limit=10) == []


def test_pending_lists_only_orders_untouched_since_the_cutoff(store: OrderStore) -> None:
    store.insert(new_order("old", created=100))
    store.insert(new_order("young", created=900))
    store.insert(new_order("done", created=50))
    with store.transaction():
        store.update(new_order("done", created=50).accept(60))
    assert [o.order_id for o in store.pending(updated_before_ns=500)] == ["old"]


def test_a_release_waits_for_settlement_and_for_every_fill_to_reach_risk(
    store: OrderStore,
) -> None:
    store.insert(new_order())
    working = new_order().accept(2)
    with store.transaction():
        store.update(working.fill(4, 10_000, 3))
        store.add_fill(fill())
    assert store.releases_due() == [], "a working order keeps its reservation"

    canceled = working.fill(4, 10_000, 3).cancel(6, 4)
    with store.transaction():
        store.update(canceled)
    assert store.fills_due() == [fill()]
    assert store.releases_due() == [], "a fill still due at risk must go first"
    assert store.outbox_backlog() == 2, "the fill, then the release"

    with store.transaction():
        store.mark_fill(fill(), Outbox.DONE)
    assert [o.order_id for o in store.releases_due()] == ["o-1"]
    assert [o.order_id for o in store.releases_due(["o-1", "zzz"])] == ["o-1"]
    assert store.releases_due([]) == []
    with store.transaction():
        store.mark_release("o-1", Outbox.DONE)
    assert store.releases_due() == [] and store.outbox_backlog() == 0


def test_marks_of_many_fills_and_releases_land_in_one_call_each(store: OrderStore) -> None:
    for n in (1, 2, 3):
        store.insert(new_order(f"o-{n}"))
        with store.transaction():
            store.update(new_order(f"o-{n}").accept(2).fill(4, 10_000, 3).cancel(6, 4))
            store.add_fill(fill(f"t-{n}", f"o-{n}"))
    with store.transaction():
        store.mark_fills([(fill("t-1", "o-1"), Outbox.DONE), (fill("t-2", "o-2"), Outbox.FAILED)])
    assert store.fills_due() == [fill("t-3", "o-3")], "each fill got its own state"
    assert sorted(o.order_id for o in store.releases_due()) == ["o-1", "o-2"]
    assert store.fully_applied(["o-1", "o-2"]) == {"o-1"}, "o-2's fill was refused"
    with store.transaction():
        store.mark_fills([(fill("t-3", "o-3"), Outbox.DONE)])
        store.mark_releases([("o-1", Outbox.DONE), ("o-2", Outbox.FAILED), ("o-3", Outbox.DONE)])
        store.mark_fills([])  # nothing to mark: no statement, no error
    assert store.releases_due() == [] and store.outbox_backlog() == 0


def test_a_canceled_order_with_fills_still_to_come_is_not_released(store: OrderStore) -> None:
    store.insert(new_order())
    with store.transaction():
        store.update(new_order().accept(2).cancel(6, 3))  # 4 traded, not recorded yet
    assert store.releases_due() == []


def test_the_store_refuses_rows_it_does_not_understand(store: OrderStore) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        store.add_fill(fill(order_id="no-such-order"))  # fills belong to orders


# -- the order event log ----------------------------------------------------------


def events(*pairs: tuple[OrderEventType, Order]) -> list[OrderEvent]:
    return [OrderEvent(kind, order) for kind, order in pairs]


def test_events_round_trip_in_order_with_their_order_and_fill(store: OrderStore) -> None:
    accepted = new_order().accept(2_000)
    filled = accepted.fill(4, 9_900, 3_000)
    taken = Fill("t-1", "o-1", 9_900, 4, False, 2_500)
    bob = new_order("o-2", account="bob").reject("no cash", "FAILED_PRECONDITION", 4_000)
    assert store.last_event_seq() == 0 and store.events_after(0, 10) == []

    with store.transaction():
        store.append_events(
            [
                OrderEvent(OrderEventType.ACCEPTED, accepted),
                OrderEvent(OrderEventType.FILLED, filled, taken),
                OrderEvent(OrderEventType.REJECTED, bob),
            ],
            now_ns=5_000,
        )

    assert store.last_event_seq() == 3
    assert store.events_after(0, 10) == [
        (1, OrderEvent(OrderEventType.ACCEPTED, accepted)),
        (2, OrderEvent(OrderEventType.FILLED, filled, taken)),
        (3, OrderEvent(OrderEventType.REJECTED, bob)),
    ], "field for field, fill included"
    assert [seq for seq, _ in store.events_after(1, 1)] == [2], "after the cursor, up to limit"
    assert store.events_after(3, 10) == []


def test_events_are_appended_only_with_the_change_they_report(store: OrderStore) -> None:
    accepted = new_order().accept(2_000)
    with pytest.raises(RuntimeError, match="belongs in the transaction"):
        store.append_events(events((OrderEventType.ACCEPTED, accepted)), now_ns=1)
    with pytest.raises(ZeroDivisionError), store.transaction():
        store.append_events(events((OrderEventType.ACCEPTED, accepted)), now_ns=1)
        _ = 1 / 0
    assert store.last_event_seq() == 0, "a rolled-back change leaves no event"


def test_the_log_is_durable_and_a_reopened_store_continues_its_numbering(
    db_path: Path,
) -> None:
    accepted = new_order().accept(2_000)
    first = OrderStore(db_path)
    with first.transaction():
        first.append_events(events((OrderEventType.ACCEPTED, accepted)) * 2, now_ns=1)
    first.close()

    reopened = OrderStore(db_path)
    try:
        assert [seq for seq, _ in reopened.events_after(0, 10)] == [1, 2]
        with reopened.transaction():
            reopened.append_events(events((OrderEventType.CANCELED, accepted)), now_ns=2)
        assert reopened.events_after(2, 10) == [(3, OrderEvent(OrderEventType.CANCELED, accepted))]
    finally:
        reopened.close()


def test_the_trim_keeps_the_newest_events_and_numbering_goes_on(store: OrderStore) -> None:
    accepted = new_order().accept(2_000)
    with store.transaction():
        store.append_events(events((OrderEventType.ACCEPTED, accepted)) * 10, now_ns=1)

    assert store.trim_events(4, limit=5) == 5, "one chunk at a time"
    assert store.trim_events(4, limit=5) == 1
    assert store.trim_events(4) == 0
    assert [seq for seq, _ in store.events_after(0, 100)] == [7, 8, 9, 10]
    with store.transaction():
        store.append_events(events((OrderEventType.ACCEPTED, accepted)), now_ns=2)
    assert store.last_event_seq() == 11
    with pytest.raises(ValueError, match="at least 1"):
        store.trim_events(0)


# -- re-homing -----------------------------------------------------------------------


def test_working_orders_of_a_symbol_come_oldest_first(store: OrderStore) -> None:
    msft = OrderSpec("MSFT", Side.BUY, OrderType.LIMIT, TimeInForce.GTC, 10, 10_000)
    for order_id, created in (("late", 300), ("early", 100), ("after", 900), ("pending", 50)):
        store.insert(new_order(order_id, created=created))
    store.insert(new_order("other", created=200, spec=msft))
    with store.transaction():
        for order_id, created in (("late", 300), ("early", 100), ("after", 900)):
            store.update(new_order(order_id, created=created).accept(created + 1))
        store.update(new_order("other", created=200, spec=msft).accept(201))
    assert [o.order_id for o in store.working("AAPL", created_before_ns=500)] == ["early", "late"]
    assert store.pending_count("AAPL", created_in=(0, 500)) == 1
    assert store.pending_count("AAPL", created_in=(60, 500)) == 0


def test_one_holder_at_a_time_leases_a_symbol_until_it_releases_or_expires(
    store: OrderStore, db_path: Path
) -> None:
    other = OrderStore(db_path)
    try:
        assert store.claim_symbol("AAPL", "one", now_ns=1_000, lease_ns=100)
        assert not other.claim_symbol("AAPL", "two", now_ns=1_050, lease_ns=100)
        assert other.claim_symbol("MSFT", "two", now_ns=1_050, lease_ns=100), "per symbol"
        assert store.claim_symbol("AAPL", "one", now_ns=1_090, lease_ns=100), "renewed"
        assert not other.claim_symbol("AAPL", "two", now_ns=1_150, lease_ns=100)
        assert other.claim_symbol("AAPL", "two", now_ns=1_190, lease_ns=100), "expired"
        other.release_symbol("AAPL", "two")
        store.release_symbol("AAPL", "two")  # not the holder any more: a no-op
        assert store.claim_symbol("AAPL", "one", now_ns=1_200, lease_ns=100)
    finally:
        other.close()


def test_an_order_s_home_is_recorded_with_its_booking(store: OrderStore) -> None:
    store.insert(new_order("o-1"))
    assert store.order_home("o-1") is None
    with store.transaction():
        store.set_order_home("o-1", "matching-1")
    with store.transaction():
        store.set_order_home("o-1", "matching-0")
    assert store.order_home("o-1") == "matching-0"
    store.add_fill(fill("t-1", qty=4))
    store.add_fill(fill("t-2", qty=3))
    with store.transaction():
        store.mark_fill(fill("t-1", qty=4), Outbox.DONE)
    assert store.due_fill_quantity("o-1") == 3
