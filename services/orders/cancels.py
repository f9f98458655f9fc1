"""CancelOrder, and the cancel of an order stranded by re-homing.

A cancel takes the order's working rest off its engine, then books it CANCELED
(booking.py) and releases what its reservation still holds (settlement.py).
Concurrent cancels of one order in this process share one engine call; each runs
as its own task, shielded from its caller, so a client that hangs up does not
leave it half done.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from services.errors import FailedPrecondition, Unavailable
from services.model import OrderStatus
from services.orders.booking import book_cancel
from services.orders.events import OrderEventHub
from services.orders.lifecycle import Order
from services.orders.ports import MatchingPort
from services.orders.settlement import RiskSettlement
from services.orders.store import OrderStore


@dataclass(frozen=True, slots=True)
class Cancellation:
    order: Order
    canceled_quantity: int  # 0 when the order was already canceled


class OrderCanceler:
    """Cancels working orders: on their engine, in the store, then at RiskService."""

    def __init__(
        self,
        store: OrderStore,
        matching: MatchingPort,
        settlement: RiskSettlement,
        events: OrderEventHub,
        clock: Callable[[], int],
    ) -> None:
        self._store = store
        self._matching = matching
        self._settlement = settlement
        self._events = events
        self._clock = clock
        self._canceling: dict[str, asyncio.Task[Cancellation]] = {}

    @property
    def in_flight(self) -> list[asyncio.Task[Cancellation]]:
        """The cancels in progress in this process."""
        return list(self._canceling.values())

    async def cancel(self, order: Order) -> Cancellation:
        """Cancels the working rest of `order` (as the client last read it)."""
        if order.status is None:
            raise Unavailable(
                f"order {order.order_id} is still being placed; cancel it again once "
                "PlaceOrder has answered"
            )
        if order.status is OrderStatus.CANCELED:
            return Cancellation(order, 0)
        if order.status.is_final:
            raise FailedPrecondition(
                f"order {order.order_id} is {order.status.name}; nothing left to cancel"
            )
        task = self._canceling.get(order.order_id)
        if task is None:  # concurrent cancels of one order share one engine call
            task = asyncio.get_running_loop().create_task(self._cancel_working(order))
            self._canceling[order.order_id] = task
            task.add_done_callback(lambda _: self._canceling.pop(order.order_id, None))
        return await asyncio.shield(task)

    async def _cancel_working(self, order: Order) -> Cancellation:
        removed = await self._matching.cancel(symbol=order.spec.symbol, order_id=order.order_id)
        with self._store.transaction():
            current = self._store.get(order.order_id)
            assert current is not None, "orders are never deleted"
            if removed == 0:
                if current.status is OrderStatus.CANCELED:  # another worker was first
                    return Cancellation(current, 0)
                if current.status is not None and current.status.is_final:
                    raise FailedPrecondition(
                        f"order {order.order_id} is {current.status.name}; nothing left to cancel"
                    )
                raise FailedPrecondition(
                    f"order {order.order_id} has nothing left on the book to cancel: it traded "
                    "and its fills are still being recorded (or an earlier cancel already took "
                    "it off); GetOrder shows its state"
                )
            current = book_cancel(self._store, current, removed, self._clock())
        self._events.notify()
        await self._settlement.settle((), {current.order_id})
        return Cancellation(current, removed)

    async def cancel_stranded(self, order_id: str, reason: str) -> Order:
        """Cancels the open rest of a working order that rests on no engine any
        more, saying why; its reservation is released."""
        with self._store.transaction():
            current = self._store.get(order_id)
            assert current is not None, "orders are never deleted"
            if current.is_pending or current.is_final or not current.open_quantity:
                return current
            current = book_cancel(
                self._store, current, current.open_quantity, self._clock(), reason=reason
            )
        self._events.notify()
        await self._settlement.settle((), {order_id})
        return current
