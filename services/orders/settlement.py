"""Settlement with RiskService through the outbox in the store.

Risk calls after a commit go through an outbox (store columns): each fill is
applied at RiskService, and a settled order's reservation released, in batched
Settle calls shared by concurrent settlements (risk_batches.py). Anything
RiskService does not confirm stays due and is retried by `settle_outbox`, so
nothing stays reserved for nothing and no fill is lost. A reservation is released
only once its order is settled and all its fills are applied, because RiskService
refuses a fill that arrives after the release.

PlaceOrder answers before it settles (`settle_later`). Settlements run in passes,
one at a time: when idle a pass starts at once with one placement; the placements
that answer while a pass runs go together in the next, which starts
SETTLE_LINGER_SECONDS after it ends so that more can join. Under load a pass
makes one Settle call, one read of the releases due and one marks transaction for
many placements instead of one of each per placement. A pass runs in the context
of the first sampled placement queued when it starts (else of the first one), so
its span is in that order's trace. Settling late is safe for the limits: until
settled, the reservation still holds the order's worst case (cash at the reserved
price, position capacity for the open quantity), and ApplyFill and Release only
give capacity back or move it from reserved to filled, never take more; so a late
settlement can leave an account short of buying power for a moment, never let it
overspend. The idempotency keys are the same ((reservation_id, trade_id) per fill;
reservation_id per release), and a pass that fails, or dies with the process,
leaves its calls due in the outbox.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Iterable, Mapping

from opentelemetry.trace import get_current_span

from services.errors import DomainError
from services.model import OrderStatus
from services.orders.failures import RETRYABLE
from services.orders.lifecycle import Fill, Order
from services.orders.outbox_marks import OutboxMarks
from services.orders.ports import FillDue, ReleaseDue, RiskPort
from services.orders.risk_batches import SettleBatcher
from services.orders.saga_trace import saga_step, settlement_span
from services.orders.store import OrderStore, Outbox

_LOGGER = logging.getLogger(__name__)

# How long the next settlement pass waits for more placements when some were
# queued as the last pass ended (under load only: an idle pass starts at once).
# A pass costs a Settle call and a few store reads and writes whatever it
# carries; 5 ms off the answer's path only lengthens how long a reservation
# holds its worst case.
SETTLE_LINGER_SECONDS = 0.005


class RiskSettlement:
    """Tells RiskService about committed fills and settled orders, and records
    what it confirmed (or refused for good) in the store's outbox columns."""

    def __init__(
        self, store: OrderStore, risk: RiskPort, *, linger: float = SETTLE_LINGER_SECONDS
    ) -> None:
        self._store = store
        # Every risk call of this process's settlements (placements, cancels, the
        # outbox) goes through one batcher: concurrent ones share a Settle call.
        self._batcher = SettleBatcher(risk)
        # The settlements one Settle answer resumes mark the outbox in one
        # transaction (outbox_marks.py).
        self._marks = OutboxMarks(store)
        # The settlement pass running (settle_later), at most one at a time.
        self._later: set[asyncio.Task[None]] = set()
        # What settle_later queued for the next pass, and the context it runs in.
        self._next = _Pass()
        self._linger = linger

    async def settle(
        self,
        fills: Iterable[Fill],
        order_ids: Iterable[str] | None,
        accounts: Mapping[str, str] | None = None,
    ) -> None:
        """Applies `fills` at RiskService, then releases the reservations of the
        settled orders among `order_ids` (None: every order due). `accounts` maps
        order ids to their accounts where the caller knows them (the store is
        read for the others). Whatever fails for now stays due in the store for
        `settle_outbox`."""
        if await self._apply_fills(fills, accounts or {}):
            await self._release(order_ids)
        else:
            saga_step("settlement_deferred", reason="risk unreachable; fills stay due")

    def settle_later(
        self,
        fills: Iterable[Fill],
        order_ids: Iterable[str],
        accounts: Mapping[str, str] | None = None,
    ) -> None:
        """settle() in the next settlement pass, so the caller can answer first:
        at once when no pass is running, else SETTLE_LINGER_SECONDS after the
        running one ends, together with every other settlement queued by then."""
        self._next.add(fills, order_ids, accounts)
        if not self._later:
            self._start_pass(0.0)

    def _start_pass(self, wait: float) -> None:
        task = asyncio.get_running_loop().create_task(
            self._settle_later(wait), context=self._next.context
        )
        self._later.add(task)
        task.add_done_callback(self._done_later)

    async def _settle_later(self, wait: float) -> None:
        if wait > 0:
            await asyncio.sleep(wait)
        # What was queued up to now: at least what this pass was started for,
        # plus whatever joined in this loop turn or while it waited.
        due, self._next = self._next, _Pass()
        with settlement_span():
            await self.settle(due.fills, due.order_ids, due.accounts)

    def _done_later(self, task: asyncio.Task[None]) -> None:
        self._later.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # Whatever it did not confirm stays due: the outbox pass retries it.
            _LOGGER.error("settlement failed; the outbox retries it", exc_info=task.exception())
        if self._next:  # queued while this pass ran: under load, let more join
            self._start_pass(self._linger)

    async def settled(self, within_seconds: float | None = None) -> bool:
        """Waits for the settlements settle_later started, including those started
        meanwhile; False when `within_seconds` passed first (what is left stays due
        in the outbox)."""
        loop = asyncio.get_running_loop()
        deadline = None if within_seconds is None else loop.time() + within_seconds
        while self._later:
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                return False
            await asyncio.wait(set(self._later), timeout=left)
        return True

    async def settle_outbox(self) -> int:
        """Retries every risk call still due; returns how many remain due."""
        await self.settle(self._store.fills_due(), None)
        return self._store.outbox_backlog()

    async def _apply_fills(self, fills: Iterable[Fill], accounts: Mapping[str, str]) -> bool:
        """Applies the fills in one batched call; False when RiskService was
        unreachable for any of them (those stay due, and no release may overtake
        them)."""
        batch = list(fills)
        if not batch:
            return True
        due = []
        for fill in batch:
            account_id = accounts.get(fill.order_id)
            if account_id is None:
                owner = self._store.get(fill.order_id)
                account_id = owner.account_id if owner is not None else ""
            due.append(FillDue(fill.order_id, account_id, fill.trade_id, fill.price, fill.quantity))
        settled = await self._batcher.settle(due, ())
        applied: list[tuple[Fill, Outbox]] = []
        reachable = True
        for fill, outcome in zip(batch, settled.fills, strict=True):
            if isinstance(outcome, RETRYABLE):
                _LOGGER.info("fill %s/%s stays due: %s", fill.trade_id, fill.order_id, outcome)
                reachable = False
            elif isinstance(outcome, DomainError):
                _LOGGER.error("risk refused fill %s/%s: %s", fill.trade_id, fill.order_id, outcome)
                applied.append((fill, Outbox.FAILED))
            else:
                applied.append((fill, Outbox.DONE))
        if applied:
            await self._marks.write(applied, [])
            saga_step("fills_applied", count=len(applied))
        return reachable

    async def _release(self, order_ids: Iterable[str] | None) -> None:
        released: list[tuple[str, Outbox]] = []
        due = self._releases_due(order_ids)
        # A FILLED order whose every fill was applied holds nothing at RiskService:
        # each ApplyFill took its quantity (and the cash at the reserved price) off
        # the reservation, so a Release would answer 0 and 0. Skip the call.
        empty = self._store.fully_applied(o.order_id for o in due if o.status is OrderStatus.FILLED)
        to_send = []
        for order in due:
            if order.order_id in empty:
                released.append((order.order_id, Outbox.DONE))
            else:
                to_send.append(ReleaseDue(order.order_id, order.account_id))
        settled = await self._batcher.settle((), to_send)
        for release, outcome in zip(to_send, settled.releases, strict=True):
            if isinstance(outcome, RETRYABLE):
                _LOGGER.info("release of %s stays due: %s", release.reservation_id, outcome)
            elif isinstance(outcome, DomainError):
                _LOGGER.error("risk refused to release %s: %s", release.reservation_id, outcome)
                released.append((release.reservation_id, Outbox.FAILED))
            else:
                released.append((release.reservation_id, Outbox.DONE))
        if released:
            await self._marks.write([], released)
            saga_step("released", count=len(released))

    def _releases_due(self, order_ids: Iterable[str] | None) -> list[Order]:
        """The store's releases due among `order_ids`, read in chunks (a pass may
        carry more orders than one read returns)."""
        if order_ids is None:
            return self._store.releases_due(None)
        ids = list(order_ids)
        due: list[Order] = []
        for start in range(0, len(ids), _RELEASES_READ):
            due += self._store.releases_due(ids[start : start + _RELEASES_READ], _RELEASES_READ)
        return due


# Orders per read of the releases due: the store's default limit.
_RELEASES_READ = 500


class _Pass:
    """The settlements queued for the next pass (settle_later), and the context
    it is started in: the first sampled one's, so a sampled order's trace shows
    its settlement, else the first one's."""

    __slots__ = ("accounts", "context", "fills", "order_ids", "sampled")

    def __init__(self) -> None:
        self.fills: list[Fill] = []
        self.order_ids: set[str] = set()
        self.accounts: dict[str, str] = {}
        self.context: contextvars.Context | None = None
        self.sampled = False

    def __bool__(self) -> bool:
        return bool(self.order_ids or self.fills)

    def add(
        self, fills: Iterable[Fill], order_ids: Iterable[str], accounts: Mapping[str, str] | None
    ) -> None:
        self.fills += fills
        self.order_ids.update(order_ids)
        if accounts:
            self.accounts.update(accounts)
        if self.sampled:
            return
        sampled = bool(get_current_span().get_span_context().trace_flags.sampled)
        if self.context is None or sampled:
            self.context = contextvars.copy_context()
            self.sampled = sampled
