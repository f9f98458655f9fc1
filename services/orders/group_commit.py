"""Group commit of the placements' own writes: the pending order inserts and the
bookings of the placements that reach that step in one event loop turn run in
one SQLite transaction, at the end of that turn.

A placement's writes are a few statements, but BEGIN and COMMIT (the write lock,
the WAL append) cost as much again; under load many placements reach the same
step in the same turn (a batched Submit answer resumes all of its placements at
once). `run` queues a placement's writes and returns once they are committed:
nothing is answered, sent to a downstream service or announced before its own
rows are durable. Each placement's writes get a savepoint of their own, so one
that fails is rolled back alone and only its caller sees the error. The whole
group runs in one callback, so the write lock is held for the group's
statements only, never across other tasks' steps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from services.orders.store import OrderStore

T = TypeVar("T")


class GroupCommit:
    """Store writes grouped per event loop turn."""

    def __init__(self, store: OrderStore) -> None:
        self._store = store
        self._queued: list[tuple[Callable[[], Any], asyncio.Future[Any]]] = []
        self.transactions = 0  # groups committed: for tests and profiles

    async def run(self, work: Callable[[], T]) -> T:
        """`work` (synchronous store writes, no await) in this turn's group
        transaction; its result once committed, or its own error (its writes
        rolled back), or the group's commit error."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[T] = loop.create_future()
        if not self._queued:
            # call_soon runs after every callback already due in this turn: the
            # placements woken together queue their writes first.
            loop.call_soon(self._commit)
        self._queued.append((work, done))
        # Shielded: a caller that gives up must not cancel the group's outcome
        # (its writes may commit all the same, as a transaction of its own would).
        return await asyncio.shield(done)

    def _commit(self) -> None:
        queued, self._queued = self._queued, []
        outcomes: list[tuple[bool, Any]] = []
        try:
            with self._store.transaction():
                if len(queued) == 1:
                    # Alone in its transaction, a failing work is rolled back with
                    # it: no savepoint needed (two statements fewer).
                    outcomes.append((True, queued[0][0]()))
                else:
                    for work, _ in queued:
                        try:
                            with self._store.savepoint():
                                outcomes.append((True, work()))
                        except Exception as exc:  # that placement's error alone
                            outcomes.append((False, exc))
        except Exception as exc:  # BEGIN or COMMIT failed, or the lone work: nothing written
            for _, done in queued:
                _settle(done, False, exc)
            return
        self.transactions += 1
        for (_, done), (ok, value) in zip(queued, outcomes, strict=True):
            _settle(done, ok, value)


def _settle(done: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if done.done():
        return
    if ok:
        done.set_result(value)
    else:
        done.set_exception(value)
        done.exception()  # retrieved here too, should its waiter be gone
