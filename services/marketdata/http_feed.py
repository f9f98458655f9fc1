"""Follows a REST matching engine's event feed (GET /v1/events:stream, Server-Sent
Events of MarketEvent JSON) into the quote board and the REST fanout.

The REST twin of feed.MatchingFeed, whose reconnect loop it shares (capped,
jittered backoff; one log line per state change) and whose rules it keeps:
the first quote of each symbol on a connection is a snapshot, a reconnect that
does not resume at the last sequence ends every trade stream, the public tape
names no accounts or orders. What differs is the wire: JSON events in, SSE
frames out (encoded once per event, however many subscribers receive it).
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
import orjson

from clients.http_pool import HttpPool, HttpUnreachable, iter_sse
from discovery import Backoff
from services.marketdata.fanout import Fanout
from services.marketdata.feed import MatchingFeed
from services.marketdata.quotes import Quote, QuoteBoard
from services.runtime.rest.problems import error_from_problem
from services.runtime.rest.sse import frame

_LOGGER = logging.getLogger(__name__)

# The fanout of the REST variant carries ready SSE frames: quotes and trades.
RestFanout = Fanout[bytes, bytes]

ENGINE_PEER = "matching engine"
_PRIVATE_TRADE_FIELDS = ("maker_order_id", "taker_order_id", "maker_account_id", "taker_account_id")


def quote_to_dict(quote: Quote) -> dict[str, Any]:
    return {
        "symbol": quote.symbol,
        "bid_price": quote.bid_price,
        "bid_quantity": quote.bid_quantity,
        "ask_price": quote.ask_price,
        "ask_quantity": quote.ask_quantity,
        "last_price": quote.last_price,
        "last_quantity": quote.last_quantity,
        "volume": quote.volume,
        "trade_count": quote.trade_count,
        "timestamp_ns": quote.timestamp_ns,
        "sequence": quote.sequence,
    }


def quote_from_dict(message: dict[str, Any]) -> Quote:
    return Quote(
        message.get("symbol", ""),
        message.get("bid_price", 0),
        message.get("bid_quantity", 0),
        message.get("ask_price", 0),
        message.get("ask_quantity", 0),
        message.get("last_price", 0),
        message.get("last_quantity", 0),
        message.get("volume", 0),
        message.get("trade_count", 0),
        message.get("timestamp_ns", 0),
        message.get("sequence", 0),
    )


class HttpMatchingFeed(MatchingFeed):
    """Applies every event of one REST engine (by instance id in `pool`) to
    `board` and publishes SSE frames to `fanout`."""

    def __init__(
        self,
        pool: HttpPool,
        instance_id: str,
        board: QuoteBoard,
        fanout: RestFanout,
        *,
        symbols: tuple[str, ...] = (),
        backoff: Backoff | None = None,
    ) -> None:
        super().__init__(
            pool.members[instance_id].endpoint.address,
            board,
            fanout,  # type: ignore[arg-type]  # frames, not protos: see apply_event
            backoff=backoff,
            symbols=symbols,
        )
        self._pool = pool
        self._instance_id = instance_id
        self._frames = fanout

    def apply_event(self, event: dict[str, Any]) -> None:
        """Hot path, once per feed event (feed.MatchingFeed.apply for JSON)."""
        board, fanout = self._board, self._frames
        trade = event.get("trade")
        if trade:
            symbol = trade["symbol"]
            sequence = self._sequence = trade["sequence"]
            quote = board.apply_trade(
                symbol, trade["price"], trade["quantity"], trade.get("timestamp_ns", 0), sequence
            )
            if quote is not None:
                for private in _PRIVATE_TRADE_FIELDS:  # as the gRPC tape: cleared
                    trade[private] = ""
                fanout.publish_trade(symbol, frame(trade))
                fanout.publish_quote(symbol, frame(quote_to_dict(quote)))
            return
        message = event.get("quote")
        if not message:
            return
        symbol = message["symbol"]
        self._sequence = message["sequence"]
        if symbol in self._synced:
            quote = board.apply_book_top(
                symbol,
                message.get("bid_price", 0),
                message.get("bid_quantity", 0),
                message.get("ask_price", 0),
                message.get("ask_quantity", 0),
                message.get("timestamp_ns", 0),
                message["sequence"],
            )
        else:
            self._synced.add(symbol)
            quote = board.apply_snapshot(quote_from_dict(message))
        if quote is not None:
            fanout.publish_quote(symbol, frame(quote_to_dict(quote)))

    async def _stream_once(self) -> str:
        """Follows one event stream until it ends; returns why it ended."""
        self._synced = set()
        member = self._pool.members.get(self._instance_id)
        if member is None:
            return "the engine is not registered any more"
        params = [("symbols", symbol) for symbol in self.symbols]
        try:
            async with self._pool.stream(member, "/v1/events:stream", params) as response:
                if response.status != 200:
                    problem = await response.read()
                    return error_from_problem(response.status, problem, ENGINE_PEER).message
                apply = self.apply_event
                async for kind, data in iter_sse(response):
                    if kind == "error":  # the engine ended the stream with a problem
                        return error_from_problem(response.status, data, ENGINE_PEER).message
                    event = orjson.loads(data)
                    if not self._connected:
                        self._connected = True
                        _LOGGER.info("matching feed %s connected", self.address)
                        first = event.get("trade") or event.get("quote") or {}
                        self._check_continuity(first.get("sequence", 0))
                    apply(event)
            return "the engine ended the stream"
        except HttpUnreachable as exc:
            return exc.reason
        except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError) as exc:
            return f"stream broken: {exc!r}"
