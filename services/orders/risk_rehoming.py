"""Follows an account whose RiskService instance changed.

RiskService is sharded by account over a consistent-hash ring and keeps
reservations in memory. When the account's owner changes (an instance went away or
joined), an ApplyFill or Release reaches an instance that has no reservation for
the order and answers NOT_FOUND. For a fill, this RiskPort re-reserves what the
order still needs on the account's current owner (Reserve with the order id as
reservation id and, as quantity, its open quantity plus its fills not yet applied
there) and retries the call once. A Release is only sent for a settled order, which
needs nothing more: NOT_FOUND means nothing is held there, and the release is done.
A batched settle() gets the same treatment item by item.

Only reservations are rebuilt: the cash and positions the old instance held are
not (README "When an instance goes away").
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

from services.errors import DomainError, NotFound
from services.model import OrderSpec
from services.orders.ports import (
    FillDue,
    FillOutcome,
    Hold,
    Released,
    ReleaseDue,
    ReleaseOutcome,
    RiskPort,
    Settled,
)
from services.orders.store import OrderStore

_LOGGER = logging.getLogger(__name__)


class RehomingRisk:
    """A RiskPort that re-reserves on the account's new owner when its reservation
    is NOT_FOUND there, then retries once."""

    def __init__(self, risk: RiskPort, store: OrderStore) -> None:
        self._risk = risk
        self._store = store

    async def reserve(self, *, reservation_id: str, account_id: str, spec: OrderSpec) -> Hold:
        return await self._risk.reserve(
            reservation_id=reservation_id, account_id=account_id, spec=spec
        )

    async def apply_fill(
        self, *, reservation_id: str, account_id: str, trade_id: str, price: int, quantity: int
    ) -> bool:
        async def call() -> bool:
            return await self._risk.apply_fill(
                reservation_id=reservation_id,
                account_id=account_id,
                trade_id=trade_id,
                price=price,
                quantity=quantity,
            )

        try:
            return await call()
        except NotFound as missing:
            if not await self._reserve_again(reservation_id, trade_id, quantity):
                raise missing from None
        return await call()

    async def release(self, reservation_id: str, account_id: str) -> Released:
        try:
            return await self._risk.release(reservation_id, account_id)
        except NotFound:
            return _nothing_held(reservation_id, account_id)

    async def settle(self, fills: Sequence[FillDue], releases: Sequence[ReleaseDue]) -> Settled:
        settled = await self._risk.settle(fills, releases)
        fill_outcomes: list[FillOutcome] = list(settled.fills)
        again = [
            index
            for index, (fill, outcome) in enumerate(zip(fills, fill_outcomes, strict=True))
            if isinstance(outcome, NotFound)
            and await self._reserve_again(fill.reservation_id, fill.trade_id, fill.quantity)
        ]
        if again:
            retried = await self._risk.settle([fills[i] for i in again], ())
            for index, outcome in zip(again, retried.fills, strict=True):
                fill_outcomes[index] = outcome
        release_outcomes: list[ReleaseOutcome] = [
            _nothing_held(release.reservation_id, release.account_id)
            if isinstance(outcome, NotFound)
            else outcome
            for release, outcome in zip(releases, settled.releases, strict=True)
        ]
        return Settled(tuple(fill_outcomes), tuple(release_outcomes))

    async def _reserve_again(self, reservation_id: str, trade_id: str, quantity: int) -> bool:
        """Reserves what the order still needs on the account's current owner: its
        open quantity and its fills RiskService has not confirmed (this one at
        least). False when the order is unknown or the Reserve is refused."""
        order = self._store.get(reservation_id)
        if order is None:
            return False
        due = max(self._store.due_fill_quantity(reservation_id), quantity)
        need = order.open_quantity + due
        _LOGGER.warning(
            "fill %s of order %s: RiskService has no reservation for it (account %s moved "
            "to another instance?); re-reserving %d there and retrying",
            trade_id,
            reservation_id,
            order.account_id,
            need,
        )
        try:
            await self._risk.reserve(
                reservation_id=reservation_id,
                account_id=order.account_id,
                spec=replace(order.spec, quantity=need),
            )
        except DomainError as err:
            _LOGGER.error("re-reserving order %s failed: %s", reservation_id, err)
            return False
        return True


def _nothing_held(reservation_id: str, account_id: str) -> Released:
    # Only settled orders are released: nothing is left to re-reserve, and an
    # instance without the reservation holds nothing for it.
    _LOGGER.warning(
        "release of order %s: RiskService has no reservation for it (account %s "
        "moved to another instance?); nothing is held there",
        reservation_id,
        account_id,
    )
    return Released(0, 0)
