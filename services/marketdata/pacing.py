"""A bound on stream writes in flight, so the engine's feed keeps up.

Why: a grpc.aio stream write suspends until grpc has taken the message, and so
does every read of the matching-engine feed; all of them complete through the
same grpc completion machinery, first in, first out. Every write in flight
queues ahead of the feed's next read, so the time one feed read takes grows with
the writes in flight, and the feed (one read in flight, a few events each) falls
behind the engine: with 1,000 subscribers ~500 writes were in flight, a feed
read took ~40 ms, and quotes were seconds old before the fan-out saw them
(bench/profiles/fanout.md). Capping the writes in flight caps that queue, so the
feed is read as fast as the engine writes it; subscribers waiting for a write
meanwhile hold only their newest quote per symbol (fanout.py conflates).

A write that does not finish within `stall_after` seconds is waiting on its
reader's flow-control window, not on grpc's queue (a subscriber that stopped
reading): it is counted out, so slow readers cannot hold the budget and stall
everyone else. A slow stream has at most one write in flight (each write is
awaited), so the writes counted out are at most one per stream.

Pure asyncio; transport-neutral, though only suspending writes need it.
"""

from __future__ import annotations

import asyncio
from collections import deque

# A write still unfinished after this long waits on its reader, not on grpc
# (healthy writes finished in 1-40 ms with 32 in flight on a busy 2-core machine).
DEFAULT_STALL_AFTER_S = 0.05


class WriteBudget:
    """At most `in_flight` writes at once (stalled ones counted out); the rest
    wait, first come first served. acquire() before a write, release() after."""

    __slots__ = (
        "_granted",
        "_limit",
        "_next_ticket",
        "_running",
        "_stall_after",
        "_timer",
        "_waiters",
    )

    def __init__(self, in_flight: int, stall_after: float = DEFAULT_STALL_AFTER_S) -> None:
        if in_flight < 1:
            raise ValueError(f"in_flight must be at least 1, got {in_flight}")
        if stall_after <= 0:
            raise ValueError(f"stall_after must be positive, got {stall_after}")
        self._limit = in_flight
        self._stall_after = stall_after
        # ticket -> start time, in start order (so the oldest write comes first).
        self._running: dict[int, float] = {}
        self._next_ticket = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        # Waiters woken with a share that have not resumed to take it yet.
        self._granted = 0
        self._timer: asyncio.TimerHandle | None = None

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def in_flight(self) -> int:
        """Writes holding a share now (stalled ones not counted)."""
        return len(self._running)

    @property
    def waiting(self) -> int:
        """Writers waiting for a share (cancelled ones included until skipped)."""
        return len(self._waiters)

    async def acquire(self) -> int:
        """Returns a ticket for release(): at once while a share is free (no
        suspension, so an idle service pays nothing), else in arrival order."""
        if len(self._running) + self._granted >= self._limit or self._waiters:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            self._watch_stalls()
            try:
                await waiter  # a cancelled waiter is skipped when a share frees up
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():  # woken, then cancelled
                    self._granted -= 1
                    self._wake()
                raise
            self._granted -= 1
        return self._start()

    def release(self, ticket: int) -> None:
        """The write of `ticket` finished (or failed, or was cancelled); idempotent."""
        if self._running.pop(ticket, None) is not None:
            self._wake()

    def _start(self) -> int:
        ticket = self._next_ticket
        self._next_ticket = ticket + 1
        self._running[ticket] = asyncio.get_running_loop().time()
        return ticket

    def _wake(self) -> None:
        """Hands free shares to waiters. A woken waiter takes its share when it
        resumes, so the woken ones count as taken until then."""
        free = self._limit - len(self._running) - self._granted
        waiters = self._waiters
        while free > 0 and waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                self._granted += 1
                free -= 1

    def _watch_stalls(self) -> None:
        # One timer at a time, and only while writers wait: an idle or
        # unsaturated budget schedules nothing.
        if self._timer is not None or not self._running:
            return
        oldest = next(iter(self._running.values()))
        loop = asyncio.get_running_loop()
        self._timer = loop.call_at(oldest + self._stall_after, self._count_out_stalled)

    def _count_out_stalled(self) -> None:
        self._timer = None
        deadline = asyncio.get_running_loop().time() - self._stall_after
        running = self._running
        for ticket, started in list(running.items()):
            if started > deadline:
                break  # start order: the rest are younger
            del running[ticket]
        self._wake()
        if self._waiters:
            self._watch_stalls()
