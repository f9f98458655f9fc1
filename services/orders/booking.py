"""Booking: what the matching engine reported, turned into order updates, fills and
order events, inside the caller's store transaction.

Each function writes the orders it changes and appends their events to the log in
that transaction (an event exists iff its change committed), and returns a
`Booking`: the events and the new fills, so that after the commit the caller pokes
the event hub and settles the fills and orders with RiskService (settlement.py).
A fill is recorded once, whoever books its trade first: the placement of either
side, its unwinding or recovery, or re-homing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from services.errors import DomainError
from services.orders.events import OrderEvent, OrderEventType
from services.orders.lifecycle import Fill, IllegalTransition, Order
from services.orders.ports import Execution, Trade
from services.orders.store import OrderStore, Outbox

_LOGGER = logging.getLogger(__name__)


@dataclass(slots=True)
class Booking:
    """What one transaction changed: its events (appended to the log inside it) and
    what to settle after it commits."""

    order: Order
    events: list[OrderEvent] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)  # new fills, every order
    orders: set[str] = field(default_factory=set)  # ids of every order changed


def book_report(
    store: OrderStore,
    order_id: str,
    execution: Execution,
    *,
    canceled_now: int,
    clock: Callable[[], int],
) -> Booking:
    """A pending order's submit report: accepted, every fill of it, and what the
    engine did not keep canceled."""
    now = clock()
    current = store.get(order_id)
    assert current is not None, "a pending order is never deleted"
    booking = Booking(current, orders={order_id})
    if not current.is_pending:  # another worker, or recovery, recorded it first
        return booking
    current = current.accept(now)
    booking.events.append(OrderEvent(OrderEventType.ACCEPTED, current))
    current = _book_trades(store, current, execution, now, booking)
    # What the engine canceled at submission (an IOC/MARKET rest, or an id it
    # had seen canceled) plus what an unwinding cancel took off the book.
    rest = (
        current.spec.quantity
        - execution.filled_quantity
        - execution.resting_quantity
        + canceled_now
    )
    if rest > 0:
        current = current.cancel(rest, now)
        booking.events.append(OrderEvent(OrderEventType.CANCELED, current))
    store.update(current)
    store.append_events(booking.events, now_ns=now)
    booking.order = current
    return booking


def book_rehomed(
    store: OrderStore,
    order_id: str,
    execution: Execution,
    *,
    submitted: int | None,
    engine: str,
    clock: Callable[[], int],
) -> Booking:
    """A working order's report from the engine it was re-submitted to (see
    OrderDesk.book_resubmission); `engine` becomes the order's home."""
    now = clock()
    current = store.get(order_id)
    assert current is not None, "orders are never deleted"
    booking = Booking(current, orders={order_id})
    current = _book_trades(store, current, execution, now, booking)
    refused = 0
    if submitted is not None:
        refused = submitted - execution.filled_quantity - execution.resting_quantity
    if refused > 0 and not current.is_final and current.open_quantity:
        reason = f"a cancel reached matching engine {engine} before the order moved there"
        current = current.cancel(min(refused, current.open_quantity), now, reason=reason)
        booking.events.append(OrderEvent(OrderEventType.CANCELED, current))
    store.update(current)
    store.append_events(booking.events, now_ns=now)
    store.set_order_home(order_id, engine)
    booking.order = current
    return booking


def book_rejection(
    store: OrderStore,
    current: Order,
    error: DomainError,
    *,
    release_due: bool,
    clock: Callable[[], int],
) -> Booking:
    """A pending order refused before anything traded: REJECTED with `error`; its
    reservation stays due for release unless risk reserved nothing."""
    booking = Booking(current, orders={current.order_id})
    if not current.is_pending:
        return booking
    now = clock()
    rejected = current.reject(error.message, error.code, now)
    store.update(rejected)
    if not release_due:  # refused by risk: it reserved nothing
        store.mark_release(rejected.order_id, Outbox.DONE)
    booking.order = rejected
    booking.events.append(OrderEvent(OrderEventType.REJECTED, rejected))
    store.append_events(booking.events, now_ns=now)
    return booking


def book_cancel(
    store: OrderStore, current: Order, quantity: int, now: int, *, reason: str = ""
) -> Order:
    """`quantity` of a working order taken off the book: CANCELED, with its event."""
    canceled = current.cancel(quantity, now, reason=reason)
    store.update(canceled)
    store.append_events([OrderEvent(OrderEventType.CANCELED, canceled)], now_ns=now)
    return canceled


def _book_trades(
    store: OrderStore, current: Order, execution: Execution, now: int, booking: Booking
) -> Order:
    """The fills of `execution`'s trades, this order's (taker) and the makers' in
    this store; each is recorded once."""
    order_id = current.order_id
    for trade in execution.trades:
        if trade.taker_order_id == order_id:
            fill = Fill(
                trade.trade_id, order_id, trade.price, trade.quantity, True, trade.timestamp_ns
            )
            filled = _filled(store, current, fill, now, "taker")
            # The insert is the check: it does nothing for a fill recorded before.
            if filled is not None and store.add_fill(fill):
                current = filled
                booking.fills.append(fill)
                booking.events.append(OrderEvent(OrderEventType.FILLED, current, fill))
        _book_maker_fill(store, trade, now, booking)
    return current


def _filled(store: OrderStore, order: Order, fill: Fill, now: int, side: str) -> Order | None:
    """`order` with `fill` booked, or None when the transition is illegal. That
    is an error unless the fill was recorded before (then the order already
    holds it); the store is only asked in that rare case."""
    try:
        return order.fill(fill.quantity, fill.price, now)
    except IllegalTransition as err:
        if not store.has_fill(fill):
            # The engine and the store disagree about the order; recording the
            # rest matters more than failing the whole placement over it.
            _LOGGER.error("trade %s: %s fill not recorded: %s", fill.trade_id, side, err)
        return None


def _book_maker_fill(store: OrderStore, trade: Trade, now: int, booking: Booking) -> None:
    """The resting side of a trade, when that order is in this store."""
    maker = store.get(trade.maker_order_id)
    if maker is None or maker.account_id != trade.maker_account_id:
        return  # placed through another OrderService: its own store records it
    fill = Fill(
        trade.trade_id, maker.order_id, trade.price, trade.quantity, False, trade.timestamp_ns
    )
    filled = _filled(store, maker, fill, now, "maker")
    if filled is None or not store.add_fill(fill):
        return
    maker = filled
    store.update(maker)
    booking.fills.append(fill)
    booking.orders.add(maker.order_id)
    booking.events.append(OrderEvent(OrderEventType.FILLED, maker, fill))
