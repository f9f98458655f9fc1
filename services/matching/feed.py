"""The engine's event feed: trades and quote changes fanned out to subscribers.

Publishing runs inside the engine's submit path, so it never waits on anyone: each
subscriber is a bounded stream (services/streams.py) the feed offers events to,
and a subscriber whose queue is full is dropped (its stream ends with
ResourceExhausted) instead of slowing the engine or every other subscriber down.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from services.errors import DomainError, ResourceExhausted
from services.model import Side
from services.streams import BoundedStream


@dataclass(frozen=True, slots=True)
class Trade:
    """One execution between a resting (maker) and an incoming (taker) order."""

    trade_id: str
    symbol: str
    price: int  # the maker's price
    quantity: int
    maker_order_id: str
    taker_order_id: str
    taker_side: Side
    maker_account_id: str
    taker_account_id: str
    timestamp_ns: int
    sequence: int


@dataclass(frozen=True, slots=True)
class Quote:
    """Top of book of one symbol. Trade statistics (last price, volume) are not
    the engine's business: market data aggregates them from the trades."""

    symbol: str
    bid_price: int
    bid_quantity: int
    ask_price: int
    ask_quantity: int
    timestamp_ns: int
    sequence: int


MarketEvent = Trade | Quote


class Subscription(BoundedStream[MarketEvent]):
    """One subscriber's view of the feed: snapshot quotes first, then live events.

    Iterate it with `async for`; use it as a context manager (or call `close()`)
    so a subscriber that goes away stops taking queue space.
    """

    __slots__ = ("_feed", "symbols")

    def __init__(
        self, feed: EventFeed, symbols: frozenset[str] | None, snapshot: Iterable[Quote]
    ) -> None:
        super().__init__(feed.queue_size, snapshot)
        self._feed = feed
        self.symbols = symbols  # None: every symbol

    def end(self, error: DomainError | None = None) -> None:
        """Leaves the feed and ends the stream. Buffered events are dropped: a
        consumer must resubscribe for a fresh snapshot."""
        if not self._closed:
            self._feed._remove(self)
        super().end(error)


class EventFeed:
    """Fans events out to any number of subscribers without ever blocking."""

    __slots__ = ("_all", "_by_symbol", "queue_size")

    def __init__(self, queue_size: int) -> None:
        if queue_size < 1:
            raise ValueError(f"feed queue size must be at least 1, got {queue_size}")
        self.queue_size = queue_size
        self._all: list[Subscription] = []  # subscribers of every symbol
        self._by_symbol: dict[str, list[Subscription]] = {}

    def __len__(self) -> int:
        """Number of live subscribers."""
        by_symbol = {id(sub) for subs in self._by_symbol.values() for sub in subs}
        return len(self._all) + len(by_symbol)

    def subscribe(self, symbols: frozenset[str] | None, snapshot: Iterable[Quote]) -> Subscription:
        """A subscriber that first gets `snapshot`, then every later event of
        `symbols` (None: all). The caller takes the snapshot and subscribes without
        an await in between, so no event falls into a gap."""
        subscription = Subscription(self, symbols, snapshot)
        if symbols is None:
            self._all.append(subscription)
        else:
            for symbol in symbols:
                self._by_symbol.setdefault(symbol, []).append(subscription)
        return subscription

    def publish(self, event: MarketEvent) -> None:
        """Hot path: offers the event to each interested subscriber, dropping the
        ones that fell behind rather than waiting for them."""
        behind: list[Subscription] = []
        for subscription in self._all:
            if not subscription.offer(event):
                behind.append(subscription)
        for subscription in self._by_symbol.get(event.symbol, ()):
            if not subscription.offer(event):
                behind.append(subscription)
        for subscription in behind:
            subscription.end(
                ResourceExhausted(
                    f"feed subscriber fell behind by more than {self.queue_size} events; "
                    "resubscribe"
                )
            )

    def close(self) -> None:
        """Ends every subscriber's stream (the engine is shutting down)."""
        for subscription in [*self._all, *(s for subs in self._by_symbol.values() for s in subs)]:
            if not subscription.closed:
                subscription.close()

    def _remove(self, subscription: Subscription) -> None:
        if subscription.symbols is None:
            if subscription in self._all:
                self._all.remove(subscription)
            return
        for symbol in subscription.symbols:
            subs = self._by_symbol.get(symbol)
            if subs is not None and subscription in subs:
                subs.remove(subscription)
                if not subs:
                    del self._by_symbol[symbol]
