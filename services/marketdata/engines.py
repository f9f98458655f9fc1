"""Follows every matching engine, each for the symbols it owns.

Symbols are spread over the engines by consistent hashing (the same ring the
order service routes by, built from the same registry and health), so market
data asks each engine for its own symbols only: an engine's empty quote of a
symbol it does not own never overwrites the owner's. When the ring changes, the
followers of the engines whose symbols changed are restarted.

Transport-neutral: the pool is the gRPC mesh's EndpointPool or the REST mesh's
HttpPool, and `new_feed` makes the follower of one engine (by default a gRPC
MatchingFeed; the REST variant passes http_feed.HttpMatchingFeed).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Protocol

from clients.balancers import Picker
from clients.balancers.ring_hash import RingHashPicker
from clients.endpoint_pool import EndpointPool
from discovery import Endpoint
from services.marketdata.feed import MatchingFeed
from services.marketdata.grpc_adapter import MarketDataFanout
from services.marketdata.quotes import QuoteBoard

_LOGGER = logging.getLogger(__name__)


class _Member(Protocol):
    @property
    def endpoint(self) -> Endpoint: ...


class EnginePool(Protocol):
    """What EngineFeeds reads of a pool of engines (EndpointPool, HttpPool)."""

    @property
    def picker(self) -> Picker: ...

    @property
    def members(self) -> Mapping[str, _Member]: ...

    def on_change(self, listener: Callable[[Any], None]) -> None: ...


class Follower(Protocol):
    """The follower of one engine's feed (MatchingFeed, HttpMatchingFeed)."""

    @property
    def address(self) -> str: ...

    @property
    def symbols(self) -> tuple[str, ...]: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


# Makes the follower of one engine: (instance id, the symbols it owns).
FeedFactory = Callable[[str, tuple[str, ...]], Follower]


class EngineFeeds:
    def __init__(
        self,
        pool: EnginePool,
        board: QuoteBoard,
        fanout: MarketDataFanout,
        *,
        new_feed: FeedFactory | None = None,
    ) -> None:
        self._pool = pool
        self._board = board
        self._fanout = fanout
        self._new_feed = new_feed or self._grpc_feed
        self.feeds: dict[str, Follower] = {}  # instance id -> its follower
        self._pending: set[asyncio.Task[None]] = set()

    def _spawn(self, work: Coroutine[object, object, None]) -> None:
        # Ring changes arrive in a plain callback: start and stop followers as tasks,
        # holding them until done (the loop keeps only weak references).
        task = asyncio.get_running_loop().create_task(work)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def start(self) -> None:
        self._pool.on_change(lambda _pool: self._follow())
        self._follow()

    def owners(self) -> dict[str, tuple[str, ...]]:
        """Instance id -> the symbols it owns, by the pool's current ring."""
        picker = self._pool.picker
        owned: dict[str, list[str]] = {}
        for symbol in self._board.symbols:
            owner = picker.owner(symbol) if isinstance(picker, RingHashPicker) else None
            if owner is not None:
                owned.setdefault(owner, []).append(symbol)
        return {owner: tuple(symbols) for owner, symbols in owned.items()}

    def _follow(self) -> None:
        wanted = self.owners()
        for instance_id, feed in list(self.feeds.items()):
            member = self._pool.members.get(instance_id)
            if (
                wanted.get(instance_id) != feed.symbols
                or member is None
                or member.endpoint.address != feed.address
            ):
                del self.feeds[instance_id]
                self._spawn(feed.stop())
        for instance_id, symbols in wanted.items():
            if instance_id in self.feeds:
                continue
            feed = self.feeds[instance_id] = self._new_feed(instance_id, symbols)
            self._spawn(feed.start())
            _LOGGER.info(
                "following engine %s (%s) for %s", instance_id, feed.address, ", ".join(symbols)
            )

    def _grpc_feed(self, instance_id: str, symbols: tuple[str, ...]) -> MatchingFeed:
        pool = self._pool
        assert isinstance(pool, EndpointPool)  # the default is for the gRPC mesh
        return MatchingFeed(
            pool.members[instance_id].endpoint.address,
            self._board,
            self._fanout,
            symbols=symbols,
            channel_factory=pool.open_channel,
        )

    async def stop(self) -> None:
        if self._pending:
            await asyncio.wait(list(self._pending))
        feeds, self.feeds = list(self.feeds.values()), {}
        for feed in feeds:
            await feed.stop()
