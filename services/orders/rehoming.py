"""Puts a symbol's resting orders back on the matching engine that now owns it.

Books live in engine memory, sharded by symbol over a consistent-hash ring of the
usable engines. When the ring changes, a symbol whose owner changed has its resting
orders on the old owner, or nowhere if that engine went away. OrderService is the
system of record, so it moves them (README "When an instance goes away"):

- the symbol's working orders (NEW, PARTIALLY_FILLED) created before this process
  saw the change, oldest first, so they keep their time priority among themselves
  (orders placed since went to the new owner directly);
- each is taken off its old engine first when that engine is still usable (Cancel
  on that engine's own channel), so it never rests twice, then submitted with the
  same id and its open quantity (or what the cancel took off) to the new owner on
  that engine's own channel. What the new owner does is booked as a placement books
  it, trades included (OrderDesk.book_resubmission), and the engine is recorded as
  the order's home (the order_homes table);
- an engine that already knew the id answers with its first report (`replayed`).
  If the order was never moved before, it was placed there (during the move): it
  rests there as booked. Otherwise that engine's copy is from before the order
  moved away (the symbol went back and forth): the copy is canceled there and the
  order CANCELED with the reason, its reservation released, never left NEW on no
  book.

Every OrderService process sees the same ring change and runs this. A lease per
symbol in the shared store (OrderStore.claim_symbol, under BEGIN IMMEDIATE) lets one
process at a time move a symbol's orders, in order; the others wait for it and then
find every order recorded on the new owner, so they skip them (without the lease, a
second process would find the order gone from the old engine and known to the new
one, and cancel it). The per-order home also makes an interrupted move resumable
(a process died, an engine call failed): moved orders are skipped, the others are
moved from where they still are.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, replace
from typing import Protocol

from services.errors import DomainError
from services.orders.lifecycle import Order
from services.orders.placement import OrderDesk
from services.orders.ports import MatchingPort
from services.orders.store import OrderStore

_LOGGER = logging.getLogger(__name__)

# The holder renews its lease after every order; if it dies, another process takes
# the symbol over this long after its last renewal (a few downstream timeouts).
DEFAULT_LEASE_SECONDS = 10.0
# How often a process waiting for another's lease looks again.
LEASE_POLL_SECONDS = 0.05
# Placements in flight when the ring changed can still trade on the old owner, or
# book an order resting there: a move waits for them this long at most (a
# placement's few downstream calls).
DEFAULT_PLACEMENT_WAIT_SECONDS = 5.0
_PLACEMENT_POLL_SECONDS = 0.02
# After a failed move (an engine unreachable), retry after this, doubling to the max.
RETRY_MIN_SECONDS = 0.1
RETRY_MAX_SECONDS = 2.0


class EngineDirectory(Protocol):
    """The matching engines one by one, as this process's mesh sees them
    (downstream.MatchingEngines; a fake in the tests)."""

    def owner(self, symbol: str) -> str | None:
        """The engine (instance id) owning `symbol` on the current ring; None when
        there is no engine."""
        ...

    def usable(self) -> Collection[str]:
        """The engines on the ring now: registered, healthy and not ejected."""
        ...

    def engine(self, instance_id: str) -> MatchingPort:
        """Calls to that one engine (they raise Unavailable once it is gone)."""
        ...

    def on_change(self, listener: Callable[[], None]) -> None:
        """Calls `listener()` after every change of the engines or their health."""
        ...


class Outcome(enum.Enum):
    """What a move did with one order."""

    MOVED = "moved"  # now rests on the new owner (or traded there)
    ALREADY_THERE = "already there"  # placed on the new owner during the move
    CANCELED = "canceled"  # known to the new owner from before: canceled, with a reason
    GONE = "gone"  # filled or canceled meanwhile: nothing to move


@dataclass(frozen=True, slots=True)
class _Move:
    """A change of a symbol's owner, as this process first saw it."""

    source: str | None  # the owner before (None: there was no engine)
    since_ns: int  # when: orders created later were placed on the new owner


class SymbolRehoming:
    """Follows the engine ring and moves each symbol's working orders to its owner."""

    def __init__(
        self,
        desk: OrderDesk,
        store: OrderStore,
        engines: EngineDirectory,
        symbols: Iterable[str],
        *,
        holder: str = "",
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        placement_wait_seconds: float = DEFAULT_PLACEMENT_WAIT_SECONDS,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self._desk = desk
        self._store = store
        self._engines = engines
        self._symbols = tuple(symbols)
        self.holder = holder or f"orders-{uuid.uuid4().hex[:12]}"
        self._lease_ns = int(lease_seconds * 1e9)
        self._placement_wait = placement_wait_seconds
        self._clock = clock  # the desk's: compared with orders' created_at_ns
        self._owners: dict[str, str | None] = {}
        self._pending: dict[str, _Move] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._closed = False
        self.outcomes: Counter[Outcome] = Counter()  # per order, for metrics and tests

    def start(self) -> None:
        """Takes the current ring as where every book is, then follows its changes."""
        self._owners = {symbol: self._engines.owner(symbol) for symbol in self._symbols}
        self._engines.on_change(self._on_change)

    async def idle(self) -> None:
        """Waits until no move is running (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

    async def close(self) -> None:
        self._closed = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- ring changes --------------------------------------------------------------

    def _on_change(self) -> None:
        # Called by the endpoint pool after every rebuild: no await, no I/O here.
        if self._closed:
            return
        now = self._clock()
        for symbol in self._symbols:
            owner = self._engines.owner(symbol)
            before = self._owners.get(symbol)
            if owner == before:
                continue
            self._owners[symbol] = owner
            # A change while one is still to be moved keeps the first one's view:
            # the orders not moved yet are still where they were then.
            self._pending.setdefault(symbol, _Move(before, now))
            if symbol not in self._tasks:
                self._tasks[symbol] = asyncio.get_running_loop().create_task(
                    self._run(symbol), name=f"rehome {symbol}"
                )

    async def _run(self, symbol: str) -> None:
        delay = RETRY_MIN_SECONDS
        try:
            while (move := self._pending.pop(symbol, None)) is not None:
                try:
                    done = await self.rehome(symbol, move.source, since_ns=move.since_ns)
                except Exception as err:  # an engine or the store failed: try again
                    _LOGGER.warning(
                        "re-homing %s failed (%s); retrying in %.1f s",
                        symbol,
                        err,
                        delay,
                        exc_info=not isinstance(err, DomainError),  # a bug: its traceback
                    )
                    done = False
                if done:
                    continue
                # Not moved: the orders are still where `move` says, whatever changed
                # meanwhile.
                self._pending[symbol] = move
                if done is None:  # no engine to move to: the next ring change says when
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_SECONDS)
        finally:
            # In the same step as the last check of _pending, so a change arriving
            # later always finds no task and starts one.
            self._tasks.pop(symbol, None)

    # -- moving one symbol -----------------------------------------------------------

    async def rehome(self, symbol: str, source: str | None, *, since_ns: int) -> bool | None:
        """Moves the working orders of `symbol` created before `since_ns` from
        `source` (or from their recorded home) to the symbol's current owner.
        True when done, None when there is no engine; raises when a call failed."""
        started = time.monotonic()
        # Other processes share the store, not this loop: polling is the only way
        # to learn that their lease ended (or, below, that their placements ended).
        while True:
            if self._claim(symbol):
                break
            await asyncio.sleep(LEASE_POLL_SECONDS)
        counts: Counter[Outcome] = Counter()
        try:
            target = self._engines.owner(symbol)
            if target is None:
                return None
            # Placements in flight when the ring changed may still trade on the old
            # owner (a draining engine finishes the calls it has) or book an order
            # that rests there: the store is complete for the symbol only once they
            # are done. Normally milliseconds; should one outlast the wait, the
            # orders are moved anyway, and again once it is done.
            settled = await self._placements_done(symbol, since_ns)
            await self._move_orders(symbol, source, target, since_ns, counts)
            if not settled and await self._placements_done(symbol, since_ns):
                await self._move_orders(symbol, source, target, since_ns, counts)
        finally:
            self._store.release_symbol(symbol, self.holder)
        self.outcomes.update(counts)
        if counts:
            _LOGGER.info(
                "re-homed %s from %s to %s in %.0f ms: %s",
                symbol,
                source or "no engine",
                target,
                (time.monotonic() - started) * 1000,
                ", ".join(f"{n} {outcome.value}" for outcome, n in counts.items()),
            )
        return True

    async def _placements_done(self, symbol: str, since_ns: int) -> bool:
        """Waits (a while at most) until no placement of `symbol` from before
        `since_ns` is still in flight. Older pending orders are stuck, not in
        flight: recovery finishes those."""
        started = renewed = time.monotonic()
        recent = (since_ns - int(self._placement_wait * 1e9), since_ns)
        while self._store.pending_count(symbol, created_in=recent):
            now = time.monotonic()
            if now - started >= self._placement_wait:
                _LOGGER.warning("re-homing %s: placements from before the change still run", symbol)
                return False
            if now - renewed >= 1.0:  # keep the lease through a long wait
                self._claim(symbol)
                renewed = now
            await asyncio.sleep(_PLACEMENT_POLL_SECONDS)
        return True

    def _claim(self, symbol: str) -> bool:
        return self._store.claim_symbol(
            symbol, self.holder, now_ns=self._clock(), lease_ns=self._lease_ns
        )

    async def _move_orders(
        self,
        symbol: str,
        source: str | None,
        target: str,
        since_ns: int,
        counts: Counter[Outcome],
    ) -> None:
        for order in self._desk.working_orders(symbol, created_before_ns=since_ns):
            recorded = self._store.order_home(order.order_id)
            where = recorded if recorded is not None else source
            if where == target:
                continue
            counts[await self._move(order, where, recorded, target)] += 1
            if not self._claim(symbol):  # renewed; lost only after a stall past the lease
                raise RuntimeError(f"lost the re-homing lease on {symbol} to another process")

    async def _move(
        self, order: Order, source: str | None, recorded: str | None, target: str
    ) -> Outcome:
        order_id, symbol = order.order_id, order.spec.symbol
        removed = 0
        live = source is not None and source in self._engines.usable()
        if live:
            # Off the old book first: an order never rests on two engines.
            assert source is not None
            removed = await self._engines.engine(source).cancel(symbol=symbol, order_id=order_id)
        current = self._store.get(order_id)  # as it stands now, after any await
        if current is None or current.is_final or not current.open_quantity:
            return Outcome.GONE
        quantity = current.open_quantity
        if live:
            # What the cancel took off is what rested; less than the open quantity
            # means the rest traded there and its booking is on its way.
            quantity = min(removed, quantity) if removed else quantity
            if not removed:
                _LOGGER.info(
                    "order %s was not resting on engine %s; submitting its open %d to %s",
                    order_id,
                    source,
                    quantity,
                    target,
                )
        new_owner = self._engines.engine(target)
        execution = await new_owner.submit(
            order_id=order_id,
            account_id=order.account_id,
            spec=replace(order.spec, quantity=quantity),
        )
        if not execution.replayed:
            await self._desk.book_resubmission(
                order_id, execution, submitted=quantity, engine=target
            )
            return Outcome.MOVED
        if not removed and recorded in (None, target):
            # Never moved before and not on the old engine: it was placed on the new
            # owner in the first place, and rests there as its placement booked.
            await self._desk.book_resubmission(order_id, execution, submitted=None, engine=target)
            return Outcome.ALREADY_THERE
        _LOGGER.warning(
            "order %s already known to engine %s (its first report again): the order "
            "moved away from there before, so that copy is stale; canceling it",
            order_id,
            target,
        )
        await new_owner.cancel(symbol=symbol, order_id=order_id)  # the stale copy, if it rests
        await self._desk.cancel_stranded(
            order_id,
            f"canceled by the service: matching engine {target}, which now owns {symbol}, "
            "already knew this order from before it moved away, so it could not be "
            "re-submitted there (README: When an instance goes away)",
        )
        return Outcome.CANCELED
