"""The order state machine: legal paths, exact quantity accounting, illegal transitions."""

from __future__ import annotations

import pytest

from services.model import OrderSpec, OrderStatus, OrderType, Side, TimeInForce
from services.orders.lifecycle import IllegalTransition, Order

SPEC = OrderSpec("AAPL", Side.BUY, OrderType.LIMIT, TimeInForce.GTC, 10, 10_000)
NEW, PARTIAL, FILLED = OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED
CANCELED, REJECTED = OrderStatus.CANCELED, OrderStatus.REJECTED


def pending(spec: OrderSpec = SPEC) -> Order:
    return Order.pending(
        order_id="o-1", account_id="alice", client_order_id="c-1", spec=spec, now_ns=100
    )


def test_a_new_order_is_pending_until_the_book_answers() -> None:
    order = pending()
    assert order.is_pending and order.status is None and not order.is_final
    assert (order.created_at_ns, order.updated_at_ns, order.open_quantity) == (100, 100, 10)

    accepted = order.accept(200)
    assert accepted.status is NEW and accepted.updated_at_ns == 200
    assert order.status is None, "transitions return a new order; the old one never changes"


def test_fills_move_a_working_order_to_filled_and_sum_the_notional() -> None:
    order = pending().accept(1).fill(4, 10_000, 2)
    assert (order.status, order.filled_quantity, order.open_quantity) == (PARTIAL, 4, 6)
    order = order.fill(6, 9_900, 3)
    assert (order.status, order.filled_quantity, order.filled_notional) == (
        FILLED,
        10,
        4 * 10_000 + 6 * 9_900,
    )
    assert order.is_settled


def test_an_ioc_rest_is_canceled_and_the_order_settles() -> None:
    order = pending().accept(1).fill(3, 10_000, 2).cancel(7, 3)
    assert (order.status, order.canceled_quantity, order.open_quantity) == (CANCELED, 7, 0)
    assert order.is_settled


def test_a_fill_recorded_after_the_cancel_still_counts_and_then_settles() -> None:
    # The trade happened on the book before the cancel; its placement recorded it later.
    canceled = pending().accept(1).cancel(6, 2)
    assert canceled.status is CANCELED and canceled.open_quantity == 4
    assert not canceled.is_settled, "fills still to be recorded keep the reservation held"
    late = canceled.fill(4, 10_000, 3)
    assert (late.status, late.filled_quantity, late.is_settled) == (CANCELED, 4, True)


def test_maker_fills_before_the_answer_show_in_the_accepted_status() -> None:
    partly = pending().fill(4, 10_000, 2)
    assert partly.is_pending and partly.filled_quantity == 4
    assert partly.accept(3).status is PARTIAL
    assert pending().fill(10, 10_000, 2).accept(3).status is FILLED


def test_reject_accounts_the_whole_quantity_as_canceled() -> None:
    rejected = pending().reject("buying_power: not enough", "FAILED_PRECONDITION", 5)
    assert (rejected.status, rejected.canceled_quantity, rejected.is_settled) == (
        REJECTED,
        10,
        True,
    )
    assert (rejected.reject_reason, rejected.error_code) == (
        "buying_power: not enough",
        "FAILED_PRECONDITION",
    )


def test_a_noted_failure_keeps_the_order_pending_and_acceptance_clears_it() -> None:
    noted = pending().note_failure("matching engine unavailable", "UNAVAILABLE", 5)
    assert noted.is_pending and noted.error_code == "UNAVAILABLE"
    accepted = noted.accept(6)
    assert (accepted.reject_reason, accepted.error_code) == ("", "")


@pytest.mark.parametrize(
    ("name", "transition"),
    [
        ("accept twice", lambda: pending().accept(1).accept(2)),
        ("fill a FILLED order", lambda: pending().accept(1).fill(10, 1, 2).fill(1, 1, 3)),
        ("fill a REJECTED order", lambda: pending().reject("r", "UNAVAILABLE", 1).fill(1, 1, 2)),
        ("overfill", lambda: pending().accept(1).fill(11, 1, 2)),
        ("overfill a canceled order", lambda: pending().accept(1).cancel(6, 2).fill(5, 1, 3)),
        ("fill nothing", lambda: pending().accept(1).fill(0, 1, 2)),
        ("fill at no price", lambda: pending().accept(1).fill(1, 0, 2)),
        ("cancel a pending order", lambda: pending().cancel(1, 1)),
        ("cancel a FILLED order", lambda: pending().accept(1).fill(10, 1, 2).cancel(1, 3)),
        ("cancel a CANCELED order", lambda: pending().accept(1).cancel(5, 2).cancel(5, 3)),
        ("cancel nothing", lambda: pending().accept(1).cancel(0, 2)),
        ("cancel more than is open", lambda: pending().accept(1).fill(5, 1, 2).cancel(6, 3)),
        ("reject an accepted order", lambda: pending().accept(1).reject("r", "UNAVAILABLE", 2)),
        ("reject after a fill", lambda: pending().fill(1, 1, 1).reject("r", "UNAVAILABLE", 2)),
        ("reject without a reason", lambda: pending().reject("", "UNAVAILABLE", 1)),
        ("note a failure on a final order", lambda: pending().accept(1).note_failure("r", "X", 2)),
    ],
)
def test_illegal_transitions_raise(name: str, transition) -> None:
    with pytest.raises(IllegalTransition):
        transition()
