"""The REST MarketDataService following a REST matching engine's event stream:
quotes and trades as Server-Sent Events, GetQuote, errors and drain."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from services.marketdata.app import MarketDataSettings
from services.marketdata.rest_app import build_rest_services as marketdata_services
from services.matching.app import MatchingSettings
from services.matching.rest_app import build_rest_services as matching_services
from services.runtime.rest.server import serving_rest, serving_rest_server
from tests.services.rest.rest_support import call, next_event


def submit(
    order_id: str, side: str, quantity: int, account: str, price: int = 18_900
) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "account_id": account,
        "side": side,
        "type": "ORDER_TYPE_LIMIT",
        "time_in_force": "TIME_IN_FORCE_GTC",
        "quantity": quantity,
        "price": price,
    }


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as opened:
        yield opened


@pytest.fixture
async def engine() -> AsyncIterator[str]:
    async with serving_rest(matching_services, MatchingSettings(port=0)) as address:
        yield f"http://{address}"


async def trade(session: aiohttp.ClientSession, engine: str, quantity: int = 4) -> None:
    book = f"{engine}/v1/books/AAPL/orders"
    maker = await call(session, "POST", book, submit("m-1", "SIDE_SELL", 10, "bob"))
    taker = await call(session, "POST", book, submit("t-1", "SIDE_BUY", quantity, "alice"))
    assert (maker[0], taker[0]) == (200, 200), (maker, taker)


async def wait_following(session: aiohttp.ClientSession, marketdata: str) -> None:
    """Until market data has the engine's start-of-stream quote (its feed is up)."""
    async with asyncio.timeout(10):
        while (await call(session, "GET", f"{marketdata}/v1/quotes/AAPL"))[2]["sequence"] == 0:
            await asyncio.sleep(0.05)


async def test_a_quote_subscriber_sees_the_trade(
    engine: str, session: aiohttp.ClientSession
) -> None:
    settings = MarketDataSettings(port=0, matching_address=engine.removeprefix("http://"))
    async with serving_rest(marketdata_services, settings) as address:
        marketdata = f"http://{address}"
        # A resting bid that trades with nothing: the feed has a quote to start with.
        bid = submit("b-0", "SIDE_BUY", 1, "carol", price=18_000)
        await call(session, "POST", f"{engine}/v1/books/AAPL/orders", bid)
        await wait_following(session, marketdata)
        async with (
            session.get(f"{marketdata}/v1/quotes:stream?symbols=AAPL") as quotes,
            session.get(f"{marketdata}/v1/trades:stream?symbols=AAPL") as trades,
        ):
            assert quotes.status == trades.status == 200
            assert quotes.headers["content-type"].startswith("text/event-stream")
            event, first = await next_event(quotes)  # the current quote comes first
            assert (event, first["symbol"], first["trade_count"]) == ("message", "AAPL", 0)

            await trade(session, engine)

            async with asyncio.timeout(10):
                quote = first
                while quote["trade_count"] == 0:
                    quote = (await next_event(quotes))[1]
            assert (quote["last_price"], quote["last_quantity"]) == (18_900, 4)
            assert (quote["volume"], quote["trade_count"]) == (4, 1)
            assert (quote["bid_price"], quote["ask_price"]) == (18_000, 18_900)
            _, tape = await next_event(trades)
            assert (tape["symbol"], tape["price"], tape["quantity"]) == ("AAPL", 18_900, 4)
            assert tape["taker_side"] == "SIDE_BUY"
            # The public tape names no accounts or orders.
            assert tape["maker_account_id"] == tape["taker_account_id"] == ""
            assert tape["maker_order_id"] == tape["taker_order_id"] == ""

        status, _, now = await call(session, "GET", f"{marketdata}/v1/quotes/AAPL")
        assert status == 200
        assert now["volume"] >= 1


async def test_unlisted_symbols_are_refused_before_streaming(
    engine: str, session: aiohttp.ClientSession
) -> None:
    settings = MarketDataSettings(port=0, matching_address=engine.removeprefix("http://"))
    async with serving_rest(marketdata_services, settings) as address:
        stream = f"http://{address}/v1/quotes:stream?symbols=AAPL&symbols=NOPE"
        status, content_type, problem = await call(session, "GET", stream)
        assert (status, content_type) == (400, "application/problem+json")
        assert [v["field"] for v in problem["field_violations"]] == ["symbols[1]"]
        status, _, problem = await call(session, "GET", f"http://{address}/v1/quotes/NOPE")
        assert (status, problem["field_violations"][0]["field"]) == (400, "symbol")


async def test_a_drain_ends_streams_with_an_unavailable_error_frame(
    engine: str, session: aiohttp.ClientSession
) -> None:
    settings = MarketDataSettings(port=0, matching_address=engine.removeprefix("http://"))
    async with (
        serving_rest_server(marketdata_services, settings) as server,
        session.get(f"http://{server.address}/v1/trades:stream") as trades,
    ):
        assert trades.status == 200
        draining = asyncio.create_task(server.drain(grace_seconds=5))
        event, problem = await next_event(trades)
        assert (event, problem["code"], problem["status"]) == ("error", "UNAVAILABLE", 503)
        assert await next_event(trades) == ("", None)  # and the stream ends
        async with asyncio.timeout(3):  # well within the grace period
            await draining
