"""Concurrent downstream calls coalesced into one batched call.

A unary call costs the caller and the callee a few hundred µs of CPU whatever it
carries, so many orders in flight at once (an OrderEntry batch, busy unary
traffic) share their Reserve, Submit and Settle calls: `Coalescer` queues the
items of the calls that arrive while one batch is in flight and sends them
together 1 ms after it returns, so that more can join. There is no wait at all
when idle (a lone call goes at once, alone) and batches grow with the load.

What each item gets is exactly what its own call would have got: the batched
methods answer every item on its own, and a failed batch call gives each of its
items that failure. A caller waits at most its own deadline (`within`, and the
deadline it serves under): past it, its item gets Unavailable, as a call of its
own timing out would, and is dropped if it was not sent yet. The batch call runs
in its first caller's context (so it is in that caller's trace) under the latest
deadline of the callers it carries.

`key_groups` splits a batch by the consistent-hash ring's owner of each item's
key: a batched call carries the items of one instance, routed by one of their
keys (the mesh channel routes by a key per call).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from clients.resilience.deadline import SERVING_DEADLINE, remaining
from services.errors import DomainError, Unavailable

_LOGGER = logging.getLogger(__name__)

# Items in one batched call: tens of kB of protobuf, well under any message limit.
MAX_BATCH_ITEMS = 500
# How long the next batch waits for more callers when callers were already
# waiting as the last one returned (under load only: an idle call goes at once).
# A batched call costs both sides about as much as a single one, so under load
# fewer, larger batches leave more CPU for everything else; 1 ms is small beside
# a loaded round trip, and it bounds what any caller can lose to it.
DEFAULT_LINGER_SECONDS = 0.001

ItemT = TypeVar("ItemT")
OutcomeT = TypeVar("OutcomeT")


@dataclass(slots=True)
class _Waiting(Generic[ItemT, OutcomeT]):
    items: list[ItemT]
    future: asyncio.Future[list[OutcomeT | DomainError]]
    context: contextvars.Context
    deadline: float | None  # the caller's serving deadline (monotonic), if any
    timer: asyncio.TimerHandle | None = None


class Coalescer(Generic[ItemT, OutcomeT]):
    """Coalesces concurrent run() calls into calls of `send`, one in flight at a
    time; when callers are waiting as one returns, the next leaves `linger`
    seconds later. `send` answers one outcome per item, in order (a DomainError
    for a refused or failed item); `what` names the call in logs and errors."""

    def __init__(
        self,
        send: Callable[[list[ItemT]], Awaitable[Sequence[OutcomeT | DomainError]]],
        *,
        what: str,
        max_items: int = MAX_BATCH_ITEMS,
        linger: float = DEFAULT_LINGER_SECONDS,
    ) -> None:
        self._send = send
        self._what = what
        self._max_items = max_items
        self._linger = linger
        self._queue: list[_Waiting[ItemT, OutcomeT]] = []
        self._busy = False  # a call in flight, or the next one lingering
        self.calls = 0  # batches sent: for tests and profiles

    @property
    def queued(self) -> int:
        """Callers waiting for the next call."""
        return len(self._queue)

    async def run(
        self, items: Sequence[ItemT], *, within: float | None = None
    ) -> list[OutcomeT | DomainError]:
        """Each item's outcome, in order, sent with whatever else is waiting; at
        most `within` seconds (and the serving deadline) of waiting."""
        if not items:
            return []
        loop = asyncio.get_running_loop()
        deadline = SERVING_DEADLINE.get()
        waiting: _Waiting[ItemT, OutcomeT] = _Waiting(
            list(items), loop.create_future(), contextvars.copy_context(), deadline
        )
        left = remaining(deadline)
        if within is not None and (left is None or within < left):
            left = within
        if left is not None:
            waiting.timer = loop.call_later(left, self._timed_out, waiting, left)
        self._queue.append(waiting)
        if not self._busy:
            self._flush_next()
        # A caller that gives up leaves its sent items in the batch: the batched
        # methods are idempotent, and the caller treats its outcome as unknown.
        return await waiting.future

    def _timed_out(self, waiting: _Waiting[ItemT, OutcomeT], seconds: float) -> None:
        if waiting.future.done():
            return
        error = Unavailable(
            f"{self._what} unavailable (DEADLINE_EXCEEDED): no answer within {seconds:.3g} s"
        )
        waiting.future.set_result([error] * len(waiting.items))

    def _flush_next(self) -> None:
        self._busy = False
        batch: list[_Waiting[ItemT, OutcomeT]] = []
        size = 0
        while self._queue and (not batch or size + len(self._queue[0].items) <= self._max_items):
            waiting = self._queue.pop(0)
            if waiting.future.done():  # timed out or cancelled before it was sent
                continue
            batch.append(waiting)
            size += len(waiting.items)
        if not batch:
            return
        self._busy = True
        context = batch[0].context.copy()
        # The call must outlive every caller it carries: the latest deadline.
        deadlines = [w.deadline for w in batch]
        latest = None if None in deadlines else max(d for d in deadlines if d is not None)
        context.run(SERVING_DEADLINE.set, latest)
        asyncio.get_running_loop().create_task(self._flush(batch), context=context)

    async def _flush(self, batch: list[_Waiting[ItemT, OutcomeT]]) -> None:
        self.calls += 1
        items = [item for waiting in batch for item in waiting.items]
        try:
            outcomes = await self._send(items)
            if len(outcomes) != len(items):
                raise RuntimeError(f"{len(outcomes)} outcomes for {len(items)} items")
        except Exception:
            # `send` answers every item and never raises: this is a bug. The
            # callers see Unavailable, as after a call whose outcome is unknown.
            _LOGGER.exception("%s of %d items failed", self._what, len(items))
            _fail(batch, Unavailable(f"{self._what} unavailable: the batched call failed"))
        except BaseException:  # cancelled: the process is stopping
            _fail([*batch, *self._queue], Unavailable(f"{self._what} interrupted"))
            self._queue.clear()
            self._busy = False
            raise
        else:
            start = 0
            for waiting in batch:
                end = start + len(waiting.items)
                _resolve(waiting, list(outcomes[start:end]))
                start = end
        if not self._queue:
            self._busy = False
        elif self._linger > 0:  # under load: let more callers join the next call
            asyncio.get_running_loop().call_later(self._linger, self._flush_next)
        else:
            self._flush_next()


def _fail(batch: Sequence[_Waiting[ItemT, OutcomeT]], error: DomainError) -> None:
    for waiting in batch:
        _resolve(waiting, [error] * len(waiting.items))


def _resolve(waiting: _Waiting[ItemT, OutcomeT], outcomes: list[OutcomeT | DomainError]) -> None:
    if waiting.timer is not None:
        waiting.timer.cancel()
    if not waiting.future.done():  # its caller may have given up
        waiting.future.set_result(outcomes)


def key_groups(keys: Sequence[str], owner: Callable[[str], str | None]) -> list[list[int]]:
    """The indexes of `keys` grouped by their owner (`owner`: the ring's owner of
    a key, None without a ring: then one group), each group in key order."""
    groups: dict[str | None, list[int]] = {}
    for index, key in enumerate(keys):
        groups.setdefault(owner(key), []).append(index)
    return list(groups.values())


AnswerT = TypeVar("AnswerT")


def scatter(
    outcomes: list[OutcomeT | DomainError],
    group: Sequence[int],
    answers: Sequence[AnswerT] | DomainError,
    decode: Callable[[int, AnswerT], OutcomeT | DomainError],
    *,
    call: str,
) -> None:
    """Puts a batched call's per-item answers at their items' places in `outcomes`:
    each decoded (`decode(index, answer)`); or, when the call failed (`answers` is
    the error) or answered a different number of items, that one error for all."""
    if not isinstance(answers, DomainError) and len(answers) != len(group):
        answers = Unavailable(f"{call} answered {len(answers)} items for {len(group)}")
    if isinstance(answers, DomainError):
        for index in group:
            outcomes[index] = answers
        return
    for index, answer in zip(group, answers, strict=True):
        outcomes[index] = decode(index, answer)
