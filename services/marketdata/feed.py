"""Follows the matching engine's event feed (MatchingEngine.StreamEventBatches) and
turns each event into quote-board updates and fanout publications.

A background task keeps one StreamEventBatches call open to the engine: the
StreamEvents feed, several events per message, which saves both ends a stream
message per event. An engine that answers UNIMPLEMENTED (an older version, mid
rolling upgrade) is followed with StreamEvents on that connection instead, said
once per engine in the log; each new connection tries batches again, so an
upgraded engine is picked up by its next connection.

When the stream ends or fails it reconnects with capped exponential backoff
(`discovery.Backoff`): 0.1 s doubling to 5 s, each delay jittered by ±20% (gRPC's
own connection-backoff jitter) so the workers of every market-data instance do not
reconnect in step. Each attempt uses a fresh channel, so this backoff is the only
one at play. It logs one line per state change (connected, lost with its reason
and the next delay), never one per event or per identical failed attempt.

Trades are never skipped silently (see fanout.py), so when a reconnected feed
does not continue exactly where the last one stopped (its first event has another
sequence than the last one applied: the engine moved on, or restarted, in
between), trades may have been lost and every StreamTrades subscriber is ended
with UNAVAILABLE and asked to resubscribe. Quote subscribers need nothing: the
engine's start-of-stream quotes bring the board, and them, up to date.

Health while the feed is down: the service stays SERVING. It still answers from
the last known quotes; every instance follows the same engine, so reporting
NOT_SERVING would make balancers eject all of them at once and turn stale quotes
into no quotes; and a stale quote shows its age in `timestamp_ns`. Operators see
the outage in the log and in `MatchingFeed.connected`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType

import grpc

from clients.channel_options import plaintext_channel
from discovery import Backoff
from services.errors import Unavailable
from services.marketdata.grpc_adapter import MarketDataFanout, quote_from_proto, quote_to_proto
from services.marketdata.quotes import Quote, QuoteBoard
from trading.v1 import matching_pb2, matching_pb2_grpc

_LOGGER = logging.getLogger(__name__)
_PRIVATE_TRADE_FIELDS = ("maker_order_id", "taker_order_id", "maker_account_id", "taker_account_id")


class MatchingFeed:
    """Applies every event of the engine at `address` to `board` and publishes
    the results to `fanout`. Use as `async with feed:` or start()/stop()."""

    def __init__(
        self,
        address: str,
        board: QuoteBoard,
        fanout: MarketDataFanout,
        *,
        backoff: Backoff | None = None,
        symbols: Sequence[str] = (),
        channel_factory: Callable[[str], grpc.aio.Channel] = plaintext_channel,
    ) -> None:
        self.address = address
        # Makes each attempt's channel: the mesh's (mTLS as this service, checking
        # the engine's identity) or, by default, plaintext.
        self._open_channel = channel_factory
        # The symbols this engine owns (all when empty): with several engines each
        # follower asks only for its engine's, so no engine's quote of a symbol it
        # does not own overwrites the owner's.
        self.symbols = tuple(symbols)
        self._board = board
        self._fanout = fanout
        self._backoff = backoff or Backoff(initial=0.1, maximum=5.0)
        self._task: asyncio.Task[None] | None = None
        self._connected = False
        # Symbols whose start-of-stream quote this connection has delivered.
        self._synced: set[str] = set()
        # Sequence of the last event received: where a reconnected feed must go on.
        self._sequence = 0
        # Set once this engine answered StreamEventBatches with UNIMPLEMENTED.
        self._fallback_logged = False

    @property
    def connected(self) -> bool:
        """True while a stream to the engine is open and delivering events."""
        return self._connected

    async def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("MatchingFeed.start() called twice; use one feed per start")
        self._task = asyncio.create_task(self._follow(), name=f"matching-feed {self.address}")
        self._task.add_done_callback(self._on_done)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        # wait() does not raise the task's own error: _on_done has logged it.
        await asyncio.wait([task])
        self._connected = False

    async def __aenter__(self) -> MatchingFeed:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def apply(self, event: matching_pb2.MarketEvent) -> None:
        """Hot path, once per feed event: update the board, publish what changed."""
        quote = self._update(event)
        if quote is not None:
            self._fanout.publish_quote(quote.symbol, quote_to_proto(quote))

    def apply_batch(self, events: Iterable[matching_pb2.MarketEvent]) -> None:
        """Hot path, once per feed batch: `events` as `apply` would, in order,
        except that each symbol's quote is published once, its newest, after the
        batch. Subscribers see the same: quotes are conflated per subscriber, and
        none reads between two events of a batch applied without an await (the
        dict keeps each symbol where it first changed, as a subscriber's pending
        quotes do)."""
        update = self._update
        changed: dict[str, Quote] = {}
        for event in events:
            quote = update(event)
            if quote is not None:
                changed[quote.symbol] = quote
        publish = self._fanout.publish_quote
        for symbol, quote in changed.items():
            publish(symbol, quote_to_proto(quote))

    def _update(self, event: matching_pb2.MarketEvent) -> Quote | None:
        """Applies one event to the board and publishes its trade; returns the
        symbol's new quote to publish, or None when nothing changed.

        The first quote of each symbol on a connection is the engine's current
        quote (the feed starts with one per symbol) and is applied as a snapshot;
        later ones are live book-top changes.
        """
        board = self._board
        if event.HasField("trade"):
            trade = event.trade
            symbol = trade.symbol
            self._sequence = trade.sequence
            quote = board.apply_trade(
                symbol, trade.price, trade.quantity, trade.timestamp_ns, trade.sequence
            )
            if quote is not None:
                # The public tape names no accounts or orders: those stay with
                # the order service, which reports fills to their owners.
                for private in _PRIVATE_TRADE_FIELDS:
                    trade.ClearField(private)
                self._fanout.publish_trade(symbol, trade)
            return quote
        if event.HasField("quote"):
            message = event.quote
            symbol = message.symbol
            self._sequence = message.sequence
            if symbol in self._synced:
                quote = board.apply_book_top(
                    symbol,
                    message.bid_price,
                    message.bid_quantity,
                    message.ask_price,
                    message.ask_quantity,
                    message.timestamp_ns,
                    message.sequence,
                )
            else:
                self._synced.add(symbol)
                quote = board.apply_snapshot(quote_from_proto(message))
            return quote
        return None

    async def _follow(self) -> None:
        loop = asyncio.get_running_loop()
        backoff = self._backoff
        last_reason: str | None = None
        while True:
            started = loop.time()
            reason = await self._stream_once()
            state = "unreachable"
            if self._connected:
                self._connected = False
                state, last_reason = "lost", None
                # A connection that lived a while starts the backoff afresh; one
                # that drops at once (a flapping engine) keeps backing off.
                if loop.time() - started >= backoff.maximum:
                    backoff.reset()
            delay = backoff.next()
            if reason != last_reason:
                _LOGGER.warning(
                    "matching feed %s %s: %s; reconnecting in %.2f s",
                    self.address,
                    state,
                    reason,
                    delay,
                )
                last_reason = reason
            else:  # the same failure again: not a state change
                _LOGGER.debug(
                    "matching feed %s still %s; next try in %.2f s", self.address, reason, delay
                )
            await asyncio.sleep(delay)

    def _on_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            # Only a bug gets here (stream failures are retried): say it loudly,
            # the service now serves frozen quotes.
            self._connected = False
            _LOGGER.error(
                "matching feed %s stopped by an unexpected error; quotes are frozen",
                self.address,
                exc_info=task.exception(),
            )

    def _check_continuity(self, sequence: int) -> None:
        """Ends the trade streams if events may have been missed before the first
        event of a new connection, at `sequence`."""
        if sequence == self._sequence:
            return
        streams = self._fanout.trade_subscribers
        if streams:
            _LOGGER.warning(
                "matching feed %s gap: resumed at sequence %d after %d; ending %d trade streams",
                self.address,
                sequence,
                self._sequence,
                streams,
            )
        self._fanout.close_trades(
            Unavailable(
                "market data missed the matching engine's feed between sequence "
                f"{self._sequence} and {sequence}, so trades may be missing; resubscribe"
            )
        )

    async def _stream_once(self) -> str:
        """Follows one feed call until it ends; returns why it ended."""
        self._synced = set()
        channel = self._open_channel(self.address)
        try:
            stub = matching_pb2_grpc.MatchingEngineStub(channel)
            request = matching_pb2.StreamEventsRequest(symbols=self.symbols)
            try:
                return await self._follow_batches(stub, request)
            except grpc.aio.AioRpcError as err:
                # An engine without the method answers at once, before any event.
                if err.code() != grpc.StatusCode.UNIMPLEMENTED or self._connected:
                    raise
                self._log_fallback()
            return await self._follow_events(stub, request)
        except grpc.aio.AioRpcError as err:
            return f"{err.code().name}: {err.details()}"
        finally:
            await channel.close()

    async def _follow_batches(
        self, stub: matching_pb2_grpc.MatchingEngineStub, request: matching_pb2.StreamEventsRequest
    ) -> str:
        apply_batch = self.apply_batch
        async for batch in stub.StreamEventBatches(request):
            events = batch.events
            if not events:
                continue
            if not self._connected:
                self._on_connected(events[0])
            apply_batch(events)
        return "the engine ended the stream"

    async def _follow_events(
        self, stub: matching_pb2_grpc.MatchingEngineStub, request: matching_pb2.StreamEventsRequest
    ) -> str:
        apply = self.apply
        async for event in stub.StreamEvents(request):
            if not self._connected:
                self._on_connected(event)
            apply(event)
        return "the engine ended the stream"

    def _on_connected(self, first: matching_pb2.MarketEvent) -> None:
        self._connected = True
        _LOGGER.info("matching feed %s connected", self.address)
        message = first.trade if first.HasField("trade") else first.quote
        self._check_continuity(message.sequence)

    def _log_fallback(self) -> None:
        # Once per engine: every reconnect to an older engine falls back again.
        level = logging.DEBUG if self._fallback_logged else logging.INFO
        self._fallback_logged = True
        _LOGGER.log(
            level,
            "matching feed %s: the engine has no StreamEventBatches (an older version); "
            "following StreamEvents",
            self.address,
        )
