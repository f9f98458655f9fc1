"""The subscriber hub: hands every quote and trade to the subscribers of its symbol.

Drop policy — slow subscribers never slow the others, and memory stays bounded:

- Quotes are CONFLATED per subscriber. A subscriber holds at most one pending
  quote per symbol; a newer quote replaces the pending older one. A slow reader
  skips straight to the newest quote of each symbol, and its backlog never grows
  beyond one quote per symbol it follows.
- Trades are never conflated or skipped. Each trade subscriber has a bounded
  stream (services/streams.py; 10_000 trades by default); when a trade does
  not fit, that subscriber is disconnected: its queue is freed and its next read
  raises ResourceExhausted("trade subscriber fell behind by more than N trades;
  resubscribe"). A gap is therefore always reported, never silent, and the
  others keep getting every trade at full speed. (Gaps upstream are reported
  the same way: see `close_trades`.)

Publishing is the hot path: it is synchronous (it never awaits, so the feed is
never held up by a subscriber) and costs O(subscribers of that symbol). Items are
opaque: the adapter publishes protobuf messages, so each is built once, not once
per subscriber.

Subscriptions are context managers; leaving the block (end of stream, client
cancel) unsubscribes. Pure asyncio, no transport.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

from services.errors import DomainError, ResourceExhausted
from services.streams import BoundedStream

Q = TypeVar("Q")
T = TypeVar("T")
Item = TypeVar("Item")
S = TypeVar("S", bound="_Subscription[Any]")

# symbol -> its subscribers (a dict used as an insertion-ordered set).
_Index = dict[str, dict[Any, None]]

# Room for about a second of a busy engine's trades: a client that falls further
# behind is better served by resubscribing than by a queue it may never drain.
DEFAULT_TRADE_QUEUE_SIZE = 10_000


class _Subscription(Generic[Item]):
    """What both kinds share: the symbols followed, and leaving the hub's index."""

    __slots__ = ("_closed", "_hub_index", "symbols")

    def __init__(self, symbols: tuple[str, ...], hub_index: _Index) -> None:
        self.symbols = symbols
        self._hub_index = hub_index
        self._closed = False
        for symbol in symbols:
            hub_index.setdefault(symbol, {})[self] = None

    @property
    def active(self) -> bool:
        """Still registered with the hub (not unsubscribed, disconnected or closed)."""
        return not self._closed

    def unsubscribe(self) -> None:
        """Stops delivery; idempotent. Pending items are dropped."""
        self._leave(None)

    def _end(self, error: DomainError) -> None:
        """Ends the subscription: its next read raises `error`."""
        self._leave(error)

    def _leave(self, error: DomainError | None) -> None:
        if self._closed:
            return
        self._closed = True
        index = self._hub_index
        for symbol in self.symbols:
            subscribers = index.get(symbol)
            if subscribers is not None:
                subscribers.pop(self, None)
                if not subscribers:
                    del index[symbol]
        self._stop(error)

    def _stop(self, error: DomainError | None) -> None:
        """Drops pending items and wakes a waiting reader; reads then raise `error`
        (None: iteration stops)."""
        raise NotImplementedError

    def __aiter__(self) -> Self:
        return self

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.unsubscribe()


class QuoteSubscription(_Subscription[Q]):
    """Newest quote per symbol, conflated: at most one pending quote per symbol."""

    __slots__ = ("_error", "_pending", "_ready")

    def __init__(
        self,
        symbols: tuple[str, ...],
        hub_index: _Index,
        initial: Iterable[tuple[str, Q]],
    ) -> None:
        # Insertion ordered: symbols come out in the order they first changed.
        self._pending: dict[str, Q] = dict(initial)
        self._ready = asyncio.Event()
        self._error: DomainError | None = None
        super().__init__(symbols, hub_index)
        if self._pending:
            self._ready.set()

    @property
    def pending(self) -> int:
        """Quotes waiting to be read (at most one per symbol followed)."""
        return len(self._pending)

    def _offer(self, symbol: str, quote: Q) -> None:
        self._pending[symbol] = quote  # replaces an unread older quote: conflation
        self._ready.set()

    async def wait(self) -> None:
        """Returns once the next read will not wait: a quote is pending or the
        subscription has ended. A writer that must wait for its turn to send
        (pacing.py) waits here first and reads after, so it sends the newest
        quote, not one that was replaced while it waited."""
        while not self._pending and not self._closed:
            self._ready.clear()
            await self._ready.wait()

    async def __anext__(self) -> Q:
        pending = self._pending
        while True:
            if pending:
                return pending.pop(next(iter(pending)))
            if self._error is not None:
                raise self._error
            if self._closed:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()

    def _stop(self, error: DomainError | None) -> None:
        self._error = error
        self._pending.clear()
        self._ready.set()


class TradeSubscription(_Subscription[T]):
    """Every trade, in order, through a bounded stream; disconnected on overflow."""

    __slots__ = ("_stream",)

    def __init__(
        self,
        symbols: tuple[str, ...],
        hub_index: _Index,
        limit: int,
    ) -> None:
        self._stream: BoundedStream[T] = BoundedStream(limit)
        super().__init__(symbols, hub_index)

    @property
    def pending(self) -> int:
        """Trades waiting to be read."""
        return self._stream.backlog

    def __anext__(self) -> Awaitable[T]:
        return self._stream.__anext__()  # the stream's own read: no extra coroutine

    def _stop(self, error: DomainError | None) -> None:
        # Also on disconnect: the backlog is freed at once, and the subscriber's
        # next read raises the error instead of draining trades it must replace.
        self._stream.end(error)


class Fanout(Generic[Q, T]):
    """Delivers quotes (conflated) and trades (bounded, lossless) to any number of
    subscribers, each following its own set of symbols."""

    __slots__ = ("_quote_index", "_trade_index", "trade_queue_size")

    def __init__(self, *, trade_queue_size: int = DEFAULT_TRADE_QUEUE_SIZE) -> None:
        if trade_queue_size < 1:
            raise ValueError(f"trade_queue_size must be at least 1, got {trade_queue_size}")
        self.trade_queue_size = trade_queue_size
        self._quote_index: dict[str, dict[QuoteSubscription[Q], None]] = {}
        self._trade_index: dict[str, dict[TradeSubscription[T], None]] = {}

    def subscribe_quotes(
        self, symbols: Iterable[str], initial: Iterable[tuple[str, Q]] = ()
    ) -> QuoteSubscription[Q]:
        """Follows the quotes of `symbols`, starting with the `initial`
        (symbol, quote) pairs, e.g. the current quote of each: registering and
        priming happen together, so no change can fall between them."""
        return QuoteSubscription(tuple(symbols), self._quote_index, initial)

    def subscribe_trades(self, symbols: Iterable[str]) -> TradeSubscription[T]:
        """Follows every trade of `symbols` from now on."""
        return TradeSubscription(tuple(symbols), self._trade_index, self.trade_queue_size)

    def publish_quote(self, symbol: str, quote: Q) -> None:
        """Hot path: O(subscribers of `symbol`), never awaits."""
        subscribers = self._quote_index.get(symbol)
        if subscribers:
            for subscription in subscribers:
                subscription._offer(symbol, quote)

    def publish_trade(self, symbol: str, trade: T) -> None:
        """Hot path: O(subscribers of `symbol`), never awaits. Disconnects every
        subscriber whose queue is full (after the loop: it edits the index)."""
        subscribers = self._trade_index.get(symbol)
        if not subscribers:
            return
        behind: list[TradeSubscription[T]] | None = None
        for subscription in subscribers:
            if not subscription._stream.offer(trade):
                if behind is None:
                    behind = []
                behind.append(subscription)
        if behind:
            error = ResourceExhausted(
                f"trade subscriber fell behind by more than {self.trade_queue_size} trades; "
                "resubscribe"
            )
            for subscription in behind:
                subscription._end(error)

    def close(self, error: DomainError) -> None:
        """Ends every subscription at once; each one's next read raises `error`
        (e.g. Unavailable when the service shuts down, so clients resubscribe
        elsewhere)."""
        for subscription in self._subscriptions(self._quote_index):
            subscription._end(error)
        self.close_trades(error)

    def close_trades(self, error: DomainError) -> None:
        """Ends every trade subscription with `error`: for when trades may have
        been lost upstream, which a trade subscriber must not miss silently."""
        for subscription in self._subscriptions(self._trade_index):
            subscription._end(error)

    @property
    def quote_subscribers(self) -> int:
        """Quote subscriptions currently registered (not a hot path)."""
        return len(self._subscriptions(self._quote_index))

    @property
    def trade_subscribers(self) -> int:
        """Trade subscriptions currently registered (not a hot path)."""
        return len(self._subscriptions(self._trade_index))

    @staticmethod
    def _subscriptions(index: dict[str, dict[S, None]]) -> list[S]:
        return list(dict.fromkeys(s for subscribers in index.values() for s in subscribers))
