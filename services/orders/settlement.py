"""Settlement with RiskService through the outbox in the store.

Risk calls after a commit go through an outbox (store columns): each fill is
applied at RiskService, and a settled order's reservation released. Anything
RiskService does not confirm stays due and is retried by `settle_outbox`, so
nothing stays reserved for nothing and no fill is lost. A reservation is released
only once its order is settled and all its fills are applied, because RiskService
refuses a fill that arrives after the release.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from services.errors import DomainError
from services.model import OrderStatus
from services.orders.failures import RETRYABLE
from services.orders.lifecycle import Fill
from services.orders.ports import RiskPort
from services.orders.saga_trace import saga_step
from services.orders.store import OrderStore, Outbox

_LOGGER = logging.getLogger(__name__)


class RiskSettlement:
    """Tells RiskService about committed fills and settled orders, and records
    what it confirmed (or refused for good) in the store's outbox columns."""

    def __init__(self, store: OrderStore, risk: RiskPort) -> None:
        self._store = store
        self._risk = risk

    async def settle(self, fills: Iterable[Fill], order_ids: Iterable[str] | None) -> None:
        """Applies `fills` at RiskService, then releases the reservations of the
        settled orders among `order_ids` (None: every order due). Whatever fails
        for now stays due in the store for `settle_outbox`."""
        if await self._apply_fills(fills):
            await self._release(order_ids)
        else:
            saga_step("settlement_deferred", reason="risk unreachable; fills stay due")

    async def settle_outbox(self) -> int:
        """Retries every risk call still due; returns how many remain due."""
        await self.settle(self._store.fills_due(), None)
        return self._store.outbox_backlog()

    async def _apply_fills(self, fills: Iterable[Fill]) -> bool:
        """Applies each fill in turn; False when RiskService was unreachable (the
        rest stay due, and no release may overtake them)."""
        applied: list[tuple[Fill, Outbox]] = []
        reachable = True
        for fill in fills:
            owner = self._store.get(fill.order_id)
            try:
                await self._risk.apply_fill(
                    reservation_id=fill.order_id,
                    account_id=owner.account_id if owner is not None else "",
                    trade_id=fill.trade_id,
                    price=fill.price,
                    quantity=fill.quantity,
                )
            except RETRYABLE as err:
                _LOGGER.info("fill %s/%s stays due: %s", fill.trade_id, fill.order_id, err)
                reachable = False
                break
            except DomainError as err:
                _LOGGER.error("risk refused fill %s/%s: %s", fill.trade_id, fill.order_id, err)
                applied.append((fill, Outbox.FAILED))
            else:
                applied.append((fill, Outbox.DONE))
        if applied:
            with self._store.transaction():
                for fill, state in applied:
                    self._store.mark_fill(fill, state)
            saga_step("fills_applied", count=len(applied))
        return reachable

    async def _release(self, order_ids: Iterable[str] | None) -> None:
        released: list[tuple[str, Outbox]] = []
        due = self._store.releases_due(order_ids)
        # A FILLED order whose every fill was applied holds nothing at RiskService:
        # each ApplyFill took its quantity (and the cash at the reserved price) off
        # the reservation, so a Release would answer 0 and 0. Skip the call.
        empty = self._store.fully_applied(o.order_id for o in due if o.status is OrderStatus.FILLED)
        for order in due:
            if order.order_id in empty:
                released.append((order.order_id, Outbox.DONE))
                continue
            try:
                await self._risk.release(order.order_id, order.account_id)
            except RETRYABLE as err:
                _LOGGER.info("release of %s stays due: %s", order.order_id, err)
                break
            except DomainError as err:
                _LOGGER.error("risk refused to release %s: %s", order.order_id, err)
                released.append((order.order_id, Outbox.FAILED))
            else:
                released.append((order.order_id, Outbox.DONE))
        if released:
            with self._store.transaction():
                for order_id, state in released:
                    self._store.mark_release(order_id, state)
            saga_step("released", count=len(released))
