"""GroupCommit over a real SQLite store: the writes of one event loop turn share a
transaction, each writer learns its own outcome once it is committed (durable:
another connection sees it), a failing writer is rolled back alone, and a batch of
placements makes far fewer transactions than two per order."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from services.model import OrderSpec, OrderType, Side, TimeInForce
from services.orders.group_commit import GroupCommit
from services.orders.lifecycle import Order
from services.orders.placement import OrderDesk, Placement
from services.orders.store import OrderStore
from tests.services.orders.support import order

SELL = 2


def pending(order_id: str) -> Order:
    spec = OrderSpec("AAPL", Side.BUY, OrderType.LIMIT, TimeInForce.GTC, 1, 10_000)
    return Order.pending(
        order_id=order_id, account_id="alice", client_order_id=order_id, spec=spec, now_ns=1
    )


async def test_writes_of_one_turn_share_a_transaction_and_fail_alone(
    store: OrderStore, db_path: Path
) -> None:
    group = GroupCommit(store)

    def insert_then_fail() -> None:
        store.insert(pending("o-bad"))
        raise ValueError("this placement's own bug")

    results = await asyncio.gather(
        group.run(lambda: store.insert(pending("o-1"))),
        group.run(insert_then_fail),
        group.run(lambda: store.insert(pending("o-2"))),
        return_exceptions=True,
    )
    assert [r.order_id for r in results if isinstance(r, Order)] == ["o-1", "o-2"]
    assert isinstance(results[1], ValueError)
    assert group.transactions == 1
    other = OrderStore(db_path)
    try:  # committed: another connection sees them; the failed one left nothing
        assert [other.get(i) is not None for i in ("o-1", "o-bad", "o-2")] == [True, False, True]
    finally:
        other.close()


async def test_a_lone_writer_that_fails_gets_its_own_error_and_leaves_nothing(
    store: OrderStore,
) -> None:
    group = GroupCommit(store)

    def insert_then_fail() -> None:
        store.insert(pending("o-bad"))
        raise ValueError("this placement's own bug")

    with pytest.raises(ValueError, match="own bug"):
        await group.run(insert_then_fail)
    assert store.get("o-bad") is None
    assert (await group.run(lambda: store.insert(pending("o-1")))).order_id == "o-1"
    assert store.get("o-1") is not None


async def test_a_group_that_cannot_commit_fails_every_writer(db_path: Path) -> None:
    store = OrderStore(db_path, busy_timeout_ms=50)
    blocker = sqlite3.connect(db_path, isolation_level=None)
    try:
        group = GroupCommit(store)
        blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        results = await asyncio.gather(
            group.run(lambda: store.insert(pending("o-1"))),
            group.run(lambda: store.insert(pending("o-2"))),
            return_exceptions=True,
        )
        assert all(isinstance(r, sqlite3.OperationalError) for r in results), results
        blocker.execute("ROLLBACK")
        assert (store.get("o-1"), store.get("o-2")) == (None, None)
        assert (await group.run(lambda: store.insert(pending("o-1")))).order_id == "o-1"
    finally:
        blocker.close()
        store.close()


async def test_a_batch_groups_its_inserts_and_bookings(desk: OrderDesk, db_path: Path) -> None:
    makers = [order(f"seller-{i}", f"s-{i}", side=SELL, quantity=2) for i in range(40)]
    before = desk._group.transactions
    outcomes = await desk.place_batch(makers)
    assert all(isinstance(o, Placement) for o in outcomes)
    used = desk._group.transactions - before
    assert used < 20, f"80 writes (insert and booking per order) in {used} transactions"
    other = OrderStore(db_path)
    try:
        for outcome in outcomes:
            assert isinstance(outcome, Placement)
            assert other.get(outcome.order.order_id) == outcome.order
    finally:
        other.close()
