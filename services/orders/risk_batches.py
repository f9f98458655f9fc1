"""Fewer settlement calls to RiskService: items grouped by the instance that owns
their account, and concurrent settlements coalesced into one call.

A placement settles one or two fills (the taker's, and the maker's when it is in
this store) and maybe a release; under load many placements settle at once. Each
Settle call costs RiskService and OrderService about as much as an ApplyFill, so
one call for all of them is most of the saving.

`owner_groups` splits one settle() by the consistent-hash ring's owner of each
item's account: the transports send one Settle per owner, routed by the first
item's account (the mesh channel routes by a key per call). `SettleBatcher`
queues the items of concurrent settle() calls while one call is in flight and
sends them together when it returns: no wait at all when the service is idle,
and batches as large as the load when it is not. Each batch runs in the context
of its first caller, so its call is in that settlement's trace.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from services.errors import DomainError, Unavailable
from services.orders.ports import (
    FillDue,
    FillOutcome,
    ReleaseDue,
    ReleaseOutcome,
    RiskPort,
    Settled,
)

_LOGGER = logging.getLogger(__name__)

# Items in one Settle call: a few tens of kB of protobuf, well under any message limit.
MAX_BATCH_ITEMS = 500


@dataclass(slots=True)
class OwnerGroup:
    """The items of one settle() owned by one instance, by their index in the call."""

    account_id: str  # routes the call: an account this owner holds
    fills: list[int] = field(default_factory=list)
    releases: list[int] = field(default_factory=list)


def owner_groups(
    fills: Sequence[FillDue],
    releases: Sequence[ReleaseDue],
    owner: Callable[[str], str | None],
) -> list[OwnerGroup]:
    """`fills` and `releases` by the owner of their account (`owner`: the ring's
    owner of a key, None when there is no ring: then one group)."""
    groups: dict[str | None, OwnerGroup] = {}
    for index, fill in enumerate(fills):
        key = owner(fill.account_id)
        group = groups.get(key)
        if group is None:
            group = groups[key] = OwnerGroup(fill.account_id)
        group.fills.append(index)
    for index, release in enumerate(releases):
        key = owner(release.account_id)
        group = groups.get(key)
        if group is None:
            group = groups[key] = OwnerGroup(release.account_id)
        group.releases.append(index)
    return list(groups.values())


class Outcomes:
    """settle()'s outcomes filled in group by group."""

    def __init__(self, fills: int, releases: int) -> None:
        self.fills: list[FillOutcome] = [Unavailable("not settled")] * fills
        self.releases: list[ReleaseOutcome] = [Unavailable("not settled")] * releases

    def fail(self, group: OwnerGroup, error: DomainError) -> None:
        """Every item of a group whose call failed."""
        for index in group.fills:
            self.fills[index] = error
        for index in group.releases:
            self.releases[index] = error

    def settled(self) -> Settled:
        return Settled(tuple(self.fills), tuple(self.releases))


@dataclass(slots=True)
class _Waiting:
    fills: list[FillDue]
    releases: list[ReleaseDue]
    future: asyncio.Future[Settled]
    context: contextvars.Context

    @property
    def size(self) -> int:
        return len(self.fills) + len(self.releases)


class SettleBatcher:
    """Coalesces concurrent settle() calls into one call of the port underneath,
    one call in flight at a time."""

    def __init__(self, risk: RiskPort, *, max_items: int = MAX_BATCH_ITEMS) -> None:
        self._risk = risk
        self._max_items = max_items
        self._queue: list[_Waiting] = []
        self._flushing: asyncio.Task[None] | None = None
        self.calls = 0  # batches sent: for tests and profiles

    async def settle(self, fills: Sequence[FillDue], releases: Sequence[ReleaseDue]) -> Settled:
        """As RiskPort.settle, sent with whatever else is waiting."""
        if not fills and not releases:
            return Settled((), ())
        loop = asyncio.get_running_loop()
        waiting = _Waiting(
            list(fills), list(releases), loop.create_future(), contextvars.copy_context()
        )
        self._queue.append(waiting)
        if self._flushing is None:
            self._flush_next()
        # A caller that gives up leaves its items in the batch: they are idempotent,
        # and whatever it does not mark as done stays due in the outbox.
        return await waiting.future

    def _flush_next(self) -> None:
        batch, size = [], 0
        while self._queue and (not batch or size + self._queue[0].size <= self._max_items):
            waiting = self._queue.pop(0)
            batch.append(waiting)
            size += waiting.size
        self._flushing = asyncio.get_running_loop().create_task(
            self._flush(batch), context=batch[0].context
        )

    async def _flush(self, batch: list[_Waiting]) -> None:
        self.calls += 1
        try:
            settled = await self._risk.settle(
                [fill for waiting in batch for fill in waiting.fills],
                [release for waiting in batch for release in waiting.releases],
            )
        except Exception:
            # A port answers every item and never raises: this is a bug. Its
            # callers see Unavailable, so their items stay due for the outbox.
            _LOGGER.exception("settling %d items with risk service failed", len(batch))
            _fail(batch, Unavailable("risk service unavailable: settlement failed"))
        except BaseException:  # cancelled: the process is stopping
            _fail([*batch, *self._queue], Unavailable("risk service settlement interrupted"))
            self._queue.clear()
            self._flushing = None
            raise
        else:
            fills, releases = 0, 0
            for waiting in batch:
                own_fills = settled.fills[fills : fills + len(waiting.fills)]
                own_releases = settled.releases[releases : releases + len(waiting.releases)]
                fills += len(waiting.fills)
                releases += len(waiting.releases)
                _resolve(waiting, Settled(own_fills, own_releases))
        self._flushing = None
        if self._queue:
            self._flush_next()


def _fail(batch: list[_Waiting], error: DomainError) -> None:
    for waiting in batch:
        _resolve(waiting, Settled((error,) * len(waiting.fills), (error,) * len(waiting.releases)))


def _resolve(waiting: _Waiting, settled: Settled) -> None:
    if not waiting.future.done():  # its caller may have been cancelled
        waiting.future.set_result(settled)
