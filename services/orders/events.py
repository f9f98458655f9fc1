"""Per-account order events for StreamOrderEvents: accepts, fills, cancels, rejects.

Publishing happens inside placements and cancels, so it never waits: each
subscriber has a bounded queue filled with `put_nowait`, and one whose queue is
full is dropped (its stream ends with ResourceExhausted) rather than slowing every
placement down. The hub lives in one process: with several workers sharing the
order store, a subscriber sees the events of the placements and cancels its own
worker handled (a bus across workers would be the next step).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import IntEnum
from types import TracebackType

from services.errors import ResourceExhausted
from services.orders.lifecycle import Fill, Order

DEFAULT_QUEUE_SIZE = 1000


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


class _End:
    """Wakes a subscriber waiting on an empty queue when its stream ends."""


_END = _End()


class OrderEventStream:
    """One subscriber's events, as (sequence, event); sequence starts at 1.

    Iterate with `async for`; use it as a context manager so a subscriber that
    goes away stops taking queue space.
    """

    __slots__ = ("_closed", "_failure", "_hub", "_queue", "_sequence", "account_id")

    def __init__(self, hub: OrderEventHub, account_id: str, queue_size: int) -> None:
        self._hub = hub
        self.account_id = account_id
        self._queue: asyncio.Queue[tuple[int, OrderEvent] | _End] = asyncio.Queue(queue_size)
        self._sequence = 0
        self._closed = False
        self._failure: str | None = None

    def __aiter__(self) -> OrderEventStream:
        return self

    async def __anext__(self) -> tuple[int, OrderEvent]:
        if not self._closed:
            item = await self._queue.get()
            if not isinstance(item, _End):
                return item
        if self._failure is not None:
            raise ResourceExhausted(self._failure)
        raise StopAsyncIteration

    def __enter__(self) -> OrderEventStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Leaves the hub; a pending `async for` ends. Safe to call twice."""
        if not self._closed:
            self._hub._remove(self)
            self._end()

    def _offer(self, event: OrderEvent) -> bool:
        """Hot path: numbers and queues the event; False when the queue is full."""
        self._sequence += 1
        try:
            self._queue.put_nowait((self._sequence, event))
        except asyncio.QueueFull:
            return False
        return True

    def _end(self, failure: str | None = None) -> None:
        self._closed = True
        self._failure = failure
        # Buffered events are dropped: the client reconciles with ListOrders anyway.
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(_END)


class OrderEventHub:
    """Fans each order event out to the subscribers of the order's account."""

    __slots__ = ("_by_account", "queue_size")

    def __init__(self, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        if queue_size < 1:
            raise ValueError(f"event queue size must be at least 1, got {queue_size}")
        self.queue_size = queue_size
        self._by_account: dict[str, list[OrderEventStream]] = {}

    def subscribe(self, account_id: str) -> OrderEventStream:
        """Every later event of `account_id`'s orders (validate the id first)."""
        stream = OrderEventStream(self, account_id, self.queue_size)
        self._by_account.setdefault(account_id, []).append(stream)
        return stream

    def subscriber_count(self, account_id: str | None = None) -> int:
        if account_id is not None:
            return len(self._by_account.get(account_id, ()))
        return sum(map(len, self._by_account.values()))

    def publish(self, event: OrderEvent) -> None:
        """Hot path: offers the event to the account's subscribers, dropping the
        ones that fell behind rather than waiting for them."""
        streams = self._by_account.get(event.order.account_id)
        if not streams:
            return
        behind = [stream for stream in streams if not stream._offer(event)]
        for stream in behind:
            self._remove(stream)
            stream._end(
                f"order event subscriber fell behind by more than {self.queue_size} events; "
                "resubscribe and reconcile with ListOrders"
            )

    def close(self) -> None:
        """Ends every stream normally (the server is shutting down)."""
        for streams in list(self._by_account.values()):
            for stream in list(streams):
                stream.close()

    def _remove(self, stream: OrderEventStream) -> None:
        streams = self._by_account.get(stream.account_id)
        if streams is not None and stream in streams:
            streams.remove(stream)
            if not streams:
                del self._by_account[stream.account_id]
