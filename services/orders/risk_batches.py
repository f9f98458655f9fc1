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
sends them together when it returns (batching.Coalescer, which Reserve and
Submit share): no wait at all when the service is idle, and batches as large as
the load when it is not. The settlements placements start after answering are
already grouped into passes before they get here (settlement.py). Each batch
runs in the context of its first caller, so its call is in that settlement's
trace.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import cast

from services.errors import DomainError, Unavailable
from services.orders.batching import MAX_BATCH_ITEMS, Coalescer
from services.orders.ports import (
    FillDue,
    FillOutcome,
    ReleaseDue,
    ReleaseOutcome,
    RiskPort,
    Settled,
)


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


async def settle_by_owner(
    fills: Sequence[FillDue],
    releases: Sequence[ReleaseDue],
    owner: Callable[[str], str | None],
    send: Callable[[OwnerGroup, Outcomes], Awaitable[None]],
) -> Settled:
    """One settle() of a transport's port: `send` makes one call per owner group,
    concurrently, and fills in its items' outcomes."""
    outcomes = Outcomes(len(fills), len(releases))
    await asyncio.gather(*(send(g, outcomes) for g in owner_groups(fills, releases, owner)))
    return outcomes.settled()


class SettleBatcher:
    """Coalesces concurrent settle() calls into one call of the port underneath,
    one call in flight at a time (batching.Coalescer)."""

    def __init__(self, risk: RiskPort, *, max_items: int = MAX_BATCH_ITEMS) -> None:
        self._risk = risk
        self._batches: Coalescer[FillDue | ReleaseDue, FillOutcome | ReleaseOutcome] = Coalescer(
            self._send, what="risk service settlement", max_items=max_items
        )

    @property
    def calls(self) -> int:
        """Batches sent: for tests and profiles."""
        return self._batches.calls

    @property
    def queued(self) -> int:
        """Settlements waiting for the call in flight to return."""
        return self._batches.queued

    async def settle(self, fills: Sequence[FillDue], releases: Sequence[ReleaseDue]) -> Settled:
        """As RiskPort.settle, sent with whatever else is waiting. A caller that
        gives up leaves its items in the batch: they are idempotent, and whatever
        it does not mark as done stays due in the outbox."""
        if not fills and not releases:
            return Settled((), ())
        outcomes = await self._batches.run([*fills, *releases])
        return Settled(
            tuple(cast(FillOutcome, o) for o in outcomes[: len(fills)]),
            tuple(cast(ReleaseOutcome, o) for o in outcomes[len(fills) :]),
        )

    async def _send(
        self, items: list[FillDue | ReleaseDue]
    ) -> list[FillOutcome | ReleaseOutcome | DomainError]:
        """One settle() of the port for the items of many callers: every fill, then
        every release, as each caller's own settle() orders them."""
        fills = [item for item in items if isinstance(item, FillDue)]
        releases = [item for item in items if isinstance(item, ReleaseDue)]
        settled = await self._risk.settle(fills, releases)
        fill_outcomes, release_outcomes = iter(settled.fills), iter(settled.releases)
        return [
            next(fill_outcomes) if isinstance(item, FillDue) else next(release_outcomes)
            for item in items
        ]
