"""Per-account order events for StreamOrderEvents: accepts, fills, cancels, rejects.

Events come from the durable log in the order store (store.py), not from this
process's own placements: every OrderService process (the --workers of one
server, and other instances on the host) books its changes into the same SQLite
file, often for accounts followed elsewhere (a taker order placed through one
process fills a maker order followed through another). So each process runs one
tailer that reads the log after its cursor and hands each event to this
process's subscribers of the order's account. A commit by this process wakes the
tailer at once (`notify`); commits by other processes are seen by polling.

Dispatch never waits: each subscriber is a bounded stream (services/streams.py)
the hub offers events to, and one whose queue is full is dropped (its stream ends
with ResourceExhausted) rather than holding every other subscriber back. A
subscriber starts at the end of the log: no history; the client reconciles with
ListOrders.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol

from services.errors import DomainError, ResourceExhausted
from services.orders.lifecycle import Fill, Order
from services.streams import BoundedStream

_LOGGER = logging.getLogger(__name__)

DEFAULT_QUEUE_SIZE = 1000
# Other processes' commits reach this one only by polling (SQLite tells no other
# process about a commit): 20 ms bounds their delay, and an idle poll costs one
# indexed query, 50 a second per process.
POLL_SECONDS = 0.020
# Events read per query. One batch is decoded and dispatched without an await, so
# it is kept to a few milliseconds of work; a backlog is read batch by batch with
# the event loop free in between.
BATCH_SIZE = 500
# After a failed read (the database locked for longer than busy_timeout, a bug):
# a lasting failure is logged once a second rather than at every poll.
_RETRY_AFTER_ERROR_SECONDS = 1.0


class OrderEventType(IntEnum):
    """Values equal trading.v1.OrderEventType."""

    ACCEPTED = 1
    FILLED = 2
    CANCELED = 3
    REJECTED = 4


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """What happened to an order, with the order as it stood right after."""

    type: OrderEventType
    order: Order
    fill: Fill | None = None  # for FILLED events


class EventLog(Protocol):
    """The order event log as the hub reads it (OrderStore is one)."""

    def events_after(self, seq: int, limit: int) -> list[tuple[int, OrderEvent]]:
        """Up to `limit` events with a log sequence above `seq`, oldest first."""
        ...

    def last_event_seq(self) -> int:
        """The log sequence of the newest event (0 when there is none)."""
        ...


class OrderEventStream(BoundedStream[tuple[int, OrderEvent]]):
    """One subscriber's events, as (sequence, event); sequence starts at 1.

    Iterate with `async for`; use it as a context manager so a subscriber that
    goes away stops taking queue space.
    """

    __slots__ = ("_after", "_hub", "_sequence", "account_id")

    def __init__(self, hub: OrderEventHub, account_id: str, queue_size: int, after: int) -> None:
        super().__init__(queue_size)
        self._hub = hub
        self.account_id = account_id
        # The log's end when the stream began: events up to it are history, which
        # the tailer may not have dispatched yet when the stream joins.
        self._after = after
        self._sequence = 0

    def end(self, error: DomainError | None = None) -> None:
        """Leaves the hub and ends the stream. Buffered events are dropped: the
        client reconciles with ListOrders anyway."""
        if not self._closed:
            self._hub._remove(self)
        super().end(error)

    def _offer(self, event: OrderEvent) -> bool:
        """Hot path: numbers and queues the event; False when the queue is full."""
        self._sequence += 1
        return self.offer((self._sequence, event))


class OrderEventHub:
    """Tails the order event log and fans each event out to this process's
    subscribers of the order's account."""

    __slots__ = (
        "_by_account",
        "_cursor",
        "_log",
        "_tailer",
        "_wake",
        "batch_size",
        "poll_seconds",
        "queue_size",
    )

    def __init__(
        self,
        log: EventLog,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        *,
        poll_seconds: float = POLL_SECONDS,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        if queue_size < 1:
            raise ValueError(f"event queue size must be at least 1, got {queue_size}")
        if batch_size < 1:
            raise ValueError(f"event batch size must be at least 1, got {batch_size}")
        self.queue_size = queue_size
        self.poll_seconds = poll_seconds
        self.batch_size = batch_size
        self._log = log
        self._by_account: dict[str, list[OrderEventStream]] = {}
        self._cursor = log.last_event_seq()  # the last event read
        self._wake = asyncio.Event()
        self._tailer: asyncio.Task[None] | None = None

    @property
    def cursor(self) -> int:
        """The log sequence of the last event this hub has read (or skipped)."""
        return self._cursor

    def subscribe(self, account_id: str) -> OrderEventStream:
        """Every later event of `account_id`'s orders (validate the id first)."""
        stream = OrderEventStream(self, account_id, self.queue_size, self._log.last_event_seq())
        self._by_account.setdefault(account_id, []).append(stream)
        return stream

    def subscriber_count(self, account_id: str | None = None) -> int:
        if account_id is not None:
            return len(self._by_account.get(account_id, ()))
        return sum(map(len, self._by_account.values()))

    def notify(self) -> None:
        """This process committed events: the tailer reads them now, not at its next poll."""
        self._wake.set()

    def poll(self) -> int:
        """Hot path: reads the next batch of the log and dispatches it; returns how
        many events it read (`batch_size`: there may be more)."""
        by_account = self._by_account
        if not by_account:
            # Nobody to tell: no reading, decoding or dispatch. The cursor still
            # moves to the end, so the first subscriber finds no backlog to read.
            self._cursor = self._log.last_event_seq()
            return 0
        batch = self._log.events_after(self._cursor, self.batch_size)
        for seq, event in batch:
            streams = by_account.get(event.order.account_id)
            if streams:
                self._dispatch(streams, seq, event)
        if batch:
            self._cursor = batch[-1][0]
        return len(batch)

    def catch_up(self) -> None:
        """Reads and dispatches the log up to its end, batch after batch, now."""
        while self.poll() == self.batch_size:
            pass

    def start(self) -> None:
        """Starts this process's tailer in the running event loop."""
        if self._tailer is not None:
            raise RuntimeError("the order event tailer is already running; start it once")
        loop = asyncio.get_running_loop()
        self._tailer = loop.create_task(self._tail(), name="order-event-tailer")

    async def stop(self) -> None:
        """Stops the tailer and ends every stream normally (the server is shutting
        down; clients resubscribe elsewhere and reconcile)."""
        if self._tailer is not None:
            self._tailer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._tailer
            self._tailer = None
        self.close()

    def close(self) -> None:
        """Ends every stream normally."""
        for streams in list(self._by_account.values()):
            for stream in list(streams):
                stream.close()

    async def _tail(self) -> None:
        while True:
            self._wake.clear()  # before the read: a later commit wakes the next wait
            try:
                read = self.poll()
            except Exception:
                # One failed read must not end every subscriber's stream: logged with
                # its traceback, retried after a pause from the same cursor.
                _LOGGER.exception("reading the order event log failed; retrying")
                await asyncio.sleep(_RETRY_AFTER_ERROR_SECONDS)
                continue
            if read == self.batch_size:  # a backlog: the next batch, after other tasks
                await asyncio.sleep(0)
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_seconds):
                    await self._wake.wait()

    def _dispatch(self, streams: list[OrderEventStream], seq: int, event: OrderEvent) -> None:
        """Hot path: offers the event to the account's subscribers, dropping the
        ones that fell behind rather than waiting for them."""
        behind = [s for s in streams if seq > s._after and not s._offer(event)]
        for stream in behind:
            stream.end(
                ResourceExhausted(
                    f"order event subscriber fell behind by more than {self.queue_size} events; "
                    "resubscribe and reconcile with ListOrders"
                )
            )

    def _remove(self, stream: OrderEventStream) -> None:
        streams = self._by_account.get(stream.account_id)
        if streams is not None and stream in streams:
            streams.remove(stream)
            if not streams:
                del self._by_account[stream.account_id]
