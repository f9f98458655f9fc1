"""A share of the event loop for stream writes, so the engine's feed keeps up.

Why: a grpc.aio stream write suspends until grpc has taken the message, so every
message a subscriber stream sends costs it a turn of the event loop, and so does
every event the matching-engine feed reads (one message per read). With N
subscribers ready, each turn would carry one feed event and N writes: the feed
falls behind the engine in proportion to N, its backlog queues up in the feed
stream's transport buffers (the quotes age there, before the fan-out can
conflate them), and every subscriber gets every quote late instead of the newest
quote in time. Capping the writes that start in one turn keeps turns short, so
the feed is read as fast as the engine writes it; subscribers waiting for their
turn meanwhile hold only their newest quote per symbol (fanout.py conflates).

The cap is per turn, not on writes in flight: a write that waits on a slow
reader's flow-control window costs nothing while it waits and holds no share.
Pure asyncio; transport-neutral, though only suspending writes need it.
"""

from __future__ import annotations

import asyncio
from collections import deque


class WriteBudget:
    """About `per_turn` writes may start in each event-loop turn; the rest wait,
    first come first served, for a later turn."""

    __slots__ = ("_left", "_per_turn", "_refill_due", "_waiters")

    def __init__(self, per_turn: int) -> None:
        if per_turn < 1:
            raise ValueError(f"per_turn must be at least 1, got {per_turn}")
        self._per_turn = per_turn
        self._left = per_turn
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._refill_due = False

    @property
    def per_turn(self) -> int:
        return self._per_turn

    @property
    def waiting(self) -> int:
        """Writers waiting for a later turn (cancelled ones included until then)."""
        return len(self._waiters)

    async def acquire(self) -> None:
        """Returns at once while this turn has budget left (no suspension, so an
        idle service pays nothing), else in a later turn, in arrival order."""
        if self._left > 0 and not self._waiters:
            self._left -= 1
            self._schedule_refill()
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._schedule_refill()
        await waiter  # a cancelled waiter is skipped by the refill

    def _schedule_refill(self) -> None:
        # Callbacks scheduled now run in the next turn: that is the turn boundary.
        # Nothing is scheduled while nobody writes, so an idle loop does not spin.
        if not self._refill_due:
            self._refill_due = True
            asyncio.get_running_loop().call_soon(self._refill)

    def _refill(self) -> None:
        self._refill_due = False
        left = self._per_turn
        waiters = self._waiters
        while left and waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                left -= 1
        self._left = left
        if left < self._per_turn:  # budget was used: renew it next turn
            self._schedule_refill()
