"""Recovery of pending orders whose placement stopped before it finished.

A placement whose unwinding failed (a downstream service unreachable) leaves its
order pending, with the failure noted; so does a process that died mid-saga. At
start-up and from the retry loop (app.py), each such order is unwound like a
failed submit (placement.py) and rejected with the noted failure, or booked with
what it traded after all.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection

from services.errors import DomainError, Unavailable
from services.orders.failures import error_from_code
from services.orders.lifecycle import Order
from services.orders.store import OrderStore

_LOGGER = logging.getLogger(__name__)

# A pending order older than this is nobody's work in progress any more: a
# placement finishes within a few downstream timeouts (reserve, submit, and the
# cancel and repeat that unwind it), so recovery leaves younger ones to their
# placement, which may be running in another worker process on the same store.
DEFAULT_RECOVERY_GRACE_SECONDS = 15.0

Unwind = Callable[[Order, DomainError], Awaitable[object]]


async def recover_abandoned(
    store: OrderStore, *, updated_before_ns: int, in_flight: Collection[str], unwind: Unwind
) -> int:
    """Unwinds the pending orders last updated before `updated_before_ns` that no
    placement of this process (`in_flight`) works on. Returns how many are still
    pending (a downstream service is still unreachable)."""
    remaining = 0
    for order in store.pending(updated_before_ns=updated_before_ns):
        if order.order_id in in_flight:
            continue
        try:
            await unwind(order, _rejection(order))
        except DomainError as err:
            remaining += 1
            _LOGGER.warning("pending order %s not recovered yet: %s", order.order_id, err)
    return remaining


def _rejection(order: Order) -> DomainError:
    """The error the order is rejected with if nothing traded: the failure its
    placement noted, or else an interruption."""
    return error_from_code(
        order.error_code or Unavailable.code,
        order.reject_reason
        or f"placing order {order.order_id} was interrupted before the matching engine "
        "answered; it was rejected, nothing traded and nothing stays reserved: place "
        "it again with a new client_order_id",
    )
