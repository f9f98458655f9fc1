"""Booking an engine report into the store: each fill is recorded once, whoever
books its trade first, and a fill the order cannot take is logged, not recorded."""

from __future__ import annotations

import logging

import pytest

from services.model import OrderSpec, OrderStatus, OrderType, Side, TimeInForce
from services.orders.booking import book_rehomed, book_report
from services.orders.events import OrderEventType
from services.orders.lifecycle import Fill, Order
from services.orders.ports import Execution, Trade
from services.orders.store import OrderStore
from tests.services.orders.support import Clock

BUY = OrderSpec("AAPL", Side.BUY, OrderType.LIMIT, TimeInForce.GTC, 4, 10_000)
SELL = OrderSpec("AAPL", Side.SELL, OrderType.LIMIT, TimeInForce.GTC, 10, 10_000)


def pending(order_id: str, account: str, spec: OrderSpec) -> Order:
    return Order.pending(
        order_id=order_id, account_id=account, client_order_id=order_id, spec=spec, now_ns=1
    )


def trade(quantity: int = 4, trade_id: str = "t-1") -> Trade:
    return Trade(trade_id, "AAPL", 10_000, quantity, "maker", "taker", "bob", "alice", 50)


def execution(*trades: Trade, filled: int = 4) -> Execution:
    status = OrderStatus.FILLED if filled == BUY.quantity else OrderStatus.PARTIALLY_FILLED
    return Execution("taker", status, filled, BUY.quantity - filled, trades)


@pytest.fixture
def booked(store: OrderStore) -> OrderStore:
    """bob's sell of 10 rests; alice's buy of 4 is pending."""
    store.insert(pending("maker", "bob", SELL))
    with store.transaction():
        store.update(pending("maker", "bob", SELL).accept(2))
    store.insert(pending("taker", "alice", BUY))
    return store


def test_a_report_books_both_sides_of_each_trade(booked: OrderStore) -> None:
    with booked.transaction():
        booking = book_report(booked, "taker", execution(trade()), canceled_now=0, clock=Clock())
    assert booking.order.status is OrderStatus.FILLED and booking.order.filled_quantity == 4
    assert booking.fills == [
        Fill("t-1", "taker", 10_000, 4, True, 50),
        Fill("t-1", "maker", 10_000, 4, False, 50),
    ]
    assert [(e.type, e.order.order_id) for e in booking.events] == [
        (OrderEventType.ACCEPTED, "taker"),
        (OrderEventType.FILLED, "taker"),
        (OrderEventType.FILLED, "maker"),
    ]
    maker = booked.get("maker")
    assert maker is not None and (maker.status, maker.filled_quantity) == (
        OrderStatus.PARTIALLY_FILLED,
        4,
    )
    assert set(booked.fills_due()) == set(booking.fills), "both fills are due at risk"


def test_a_trade_booked_again_changes_nothing_and_logs_nothing(
    booked: OrderStore, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    with booked.transaction():
        book_report(booked, "taker", execution(trade()), canceled_now=0, clock=clock)
    before = (booked.get("taker"), booked.get("maker"), booked.last_event_seq())
    # The same report again, as a re-homing of the taker would see it: the taker
    # cannot take 4 more (it is FILLED), the maker could (it has 6 open) but the
    # fill is on record already. Neither is a disagreement worth an error.
    with caplog.at_level(logging.WARNING), booked.transaction():
        again = book_rehomed(
            booked, "taker", execution(trade()), submitted=None, engine="m-1", clock=clock
        )
    assert (again.fills, again.events, again.orders) == ([], [], {"taker"})
    assert (booked.get("taker"), booked.get("maker"), booked.last_event_seq()) == before
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_fill_the_order_cannot_take_is_logged_and_not_recorded(
    booked: OrderStore, caplog: pytest.LogCaptureFixture
) -> None:
    # The engine reports 6 for a buy of 4: the store and the engine disagree.
    too_big = execution(trade(quantity=6), filled=4)
    with caplog.at_level(logging.ERROR), booked.transaction():
        booking = book_report(booked, "taker", too_big, canceled_now=0, clock=Clock())
    assert "trade t-1: taker fill not recorded" in caplog.text
    assert booked.fills("taker") == [], "the taker's side is not recorded"
    assert booking.order.filled_quantity == 0
    # The maker could take 6 of its 10: its side is recorded.
    assert [f.order_id for f in booking.fills] == ["maker"]
