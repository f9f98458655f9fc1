"""MarketDataService over HTTP/JSON: quotes and trades from the same quote board
and fanout as the gRPC adapter, the streams as Server-Sent Events.

    GET /v1/quotes/{symbol}                 GetQuote
    GET /v1/quotes:stream?symbols=A&...     StreamQuotes (SSE of Quote; every symbol if none)
    GET /v1/trades:stream?symbols=A&...     StreamTrades (SSE of Trade)

The drop policy is the fanout's (fanout.py): a slow quote reader is conflated to
the newest quote per symbol; a trade reader that falls too far behind gets an
`event: error` frame (RESOURCE_EXHAUSTED) and the stream ends, as does every
stream when the feed had a gap or the server drains (UNAVAILABLE). Route names
are the gRPC method names, for the authorization policy.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from services.marketdata.http_feed import RestFanout, quote_to_dict
from services.marketdata.quotes import QuoteBoard
from services.runtime.rest.responses import JsonResponse
from services.runtime.rest.sse import EventStreamResponse, frame, frames

Symbols = Annotated[list[str] | None, Query(description="symbols to follow; all when none")]


def marketdata_router(board: QuoteBoard, fanout: RestFanout) -> APIRouter:
    """The MarketDataService routes; `fanout` carries ready SSE frames."""
    router = APIRouter()

    @router.get("/v1/quotes/{symbol}", name="GetQuote", summary="The current quote of a symbol")
    async def get_quote(symbol: str) -> JsonResponse:
        return JsonResponse(quote_to_dict(board.quote(symbol)))

    @router.get(
        "/v1/quotes:stream",
        name="StreamQuotes",
        summary="Server-Sent Events: the current quote of each symbol, then every change "
        "(conflated per symbol for a slow reader)",
        response_class=EventStreamResponse,
    )
    async def stream_quotes(symbols: Symbols = None) -> EventStreamResponse:
        resolved = board.resolve_symbols(symbols or ())  # unlisted ones: 400 before streaming
        current = [(s, frame(quote_to_dict(board.quote(s)))) for s in resolved]
        subscription = fanout.subscribe_quotes(resolved, current)
        return EventStreamResponse(frames(subscription), subscription)

    @router.get(
        "/v1/trades:stream",
        name="StreamTrades",
        summary="Server-Sent Events: every later trade of the symbols (public fields)",
        response_class=EventStreamResponse,
    )
    async def stream_trades(symbols: Symbols = None) -> EventStreamResponse:
        subscription = fanout.subscribe_trades(board.resolve_symbols(symbols or ()))
        return EventStreamResponse(frames(subscription), subscription)

    return router
