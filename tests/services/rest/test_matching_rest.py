"""MatchingEngine over HTTP/JSON on a real uvicorn server: orders, book, cancel,
and the event feed as Server-Sent Events (snapshot, live events, slow-subscriber
drop as an error frame, end of stream on drain)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from services.instruments import InstrumentCatalog
from services.matching.app import SERVICE_NAME, MatchingSettings
from services.matching.engine import MatchingEngine
from services.matching.rest_adapter import matching_router
from services.matching.rest_app import build_rest_services
from services.runtime.rest.server import RestBinding, serving_rest, serving_rest_server

from .rest_support import call, next_event


def order(order_id: str, side: str, quantity: int, price: int, **extra: object) -> dict:
    return {
        "order_id": order_id,
        "account_id": f"acct-{order_id}",
        "side": side,
        "type": "ORDER_TYPE_LIMIT",
        "time_in_force": "TIME_IN_FORCE_GTC",
        "quantity": quantity,
        "price": price,
        **extra,
    }


@pytest.fixture
async def matching() -> AsyncIterator[tuple[aiohttp.ClientSession, str]]:
    async with (
        serving_rest(build_rest_services, MatchingSettings(port=0)) as address,
        aiohttp.ClientSession() as session,
    ):
        yield session, f"http://{address}"


async def test_submit_match_book_and_cancel(matching) -> None:
    session, base = matching
    orders = f"{base}/v1/books/AAPL/orders"
    status, _, rested = await call(session, "POST", orders, order("s1", "SIDE_SELL", 10, 15_000))
    assert status == 200, rested
    assert rested["status"] == "ORDER_STATUS_NEW"
    assert (rested["symbol"], rested["resting_quantity"], rested["trades"]) == ("AAPL", 10, [])

    taker = order("b1", "SIDE_BUY", 4, 15_000, symbol="AAPL")  # a matching symbol is fine
    status, _, report = await call(session, "POST", orders, taker)
    assert status == 200, report
    assert report["status"] == "ORDER_STATUS_FILLED"
    [trade] = report["trades"]
    assert trade["taker_side"] == "SIDE_BUY"
    assert (trade["price"], trade["quantity"], trade["maker_order_id"]) == (15_000, 4, "s1")
    assert isinstance(trade["timestamp_ns"], int) and isinstance(trade["sequence"], int)

    status, _, book = await call(session, "GET", f"{base}/v1/books/AAPL?depth=5")
    assert status == 200
    assert book["asks"] == [{"price": 15_000, "quantity": 6, "order_count": 1}]
    assert book["bids"] == [] and book["symbol"] == "AAPL"

    status, _, canceled = await call(session, "POST", f"{orders}/s1:cancel")
    assert (status, canceled) == (200, {"order_id": "s1", "canceled_quantity": 6})
    status, _, book = await call(session, "GET", f"{base}/v1/books/AAPL")
    assert book["asks"] == []


async def test_errors_are_problems(matching) -> None:
    session, base = matching
    wrong = order("x1", "SIDE_BUY", 1, 15_000, symbol="MSFT")
    status, _, body = await call(session, "POST", f"{base}/v1/books/AAPL/orders", wrong)
    assert (status, body["code"]) == (400, "INVALID_ARGUMENT")
    assert [v["field"] for v in body["field_violations"]] == ["symbol"]

    status, _, body = await call(session, "GET", f"{base}/v1/books/NOPE")
    assert (status, body["code"]) == (400, "INVALID_ARGUMENT")
    status, _, body = await call(session, "GET", f"{base}/v1/books/AAPL?depth=many")
    assert (status, body["field_violations"][0]["field"]) == (400, "depth")
    status, _, body = await call(session, "GET", f"{base}/v1/events:stream?symbols=NOPE")
    assert (status, body["code"]) == (400, "INVALID_ARGUMENT")
    assert body["field_violations"][0]["field"] == "symbols[0]"


async def test_event_stream_sends_the_snapshot_then_live_events(matching) -> None:
    session, base = matching
    async with session.get(f"{base}/v1/events:stream?symbols=AAPL&symbols=MSFT") as stream:
        assert stream.status == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        snapshot = {(await next_event(stream))[1]["quote"]["symbol"] for _ in range(2)}
        assert snapshot == {"AAPL", "MSFT"}
        await call(
            session, "POST", f"{base}/v1/books/AAPL/orders", order("s1", "SIDE_SELL", 5, 15_000)
        )
        await call(
            session, "POST", f"{base}/v1/books/AAPL/orders", order("b1", "SIDE_BUY", 5, 15_000)
        )
        seen = []
        while not any("trade" in e for e in seen):
            name, event = await next_event(stream)
            assert name == "message"
            seen.append(event)
        trade = next(e["trade"] for e in seen if "trade" in e)
        assert (trade["symbol"], trade["quantity"], trade["taker_side"]) == ("AAPL", 5, "SIDE_BUY")
        assert seen[0]["quote"]["ask_price"] == 15_000  # the resting sell's quote came first


async def test_a_subscriber_that_falls_behind_gets_an_error_frame_and_the_end() -> None:
    engine = MatchingEngine(InstrumentCatalog.default(), engine_id="t", feed_queue_size=2)
    binding = RestBinding(SERVICE_NAME, matching_router(engine), on_drain=engine.close)
    async with serving_rest([binding]) as address, aiohttp.ClientSession() as session:
        async with session.get(f"http://{address}/v1/events:stream?symbols=AAPL") as stream:
            await next_event(stream)  # the snapshot: the subscription exists
            # Each buy raises the best bid (a quote each), published without yielding
            # to the loop: the stream cannot keep up.
            for i in range(10):
                engine.submit(
                    order_id=f"o{i}", account_id="a", symbol="AAPL", side=1, type=1,
                    time_in_force=1, quantity=1, price=15_000 + i,
                )  # fmt: skip
            events = []
            while (event := await next_event(stream))[0] != "":
                events.append(event)
        name, problem = events[-1]
        assert name == "error"
        assert (problem["code"], problem["status"]) == ("RESOURCE_EXHAUSTED", 429)
        assert "resubscribe" in problem["detail"]
        assert engine.subscriber_count == 0


async def test_drain_ends_open_streams_so_it_does_not_wait_the_grace_period() -> None:
    async with (
        serving_rest_server(build_rest_services, MatchingSettings(port=0)) as server,
        aiohttp.ClientSession() as session,
        session.get(f"http://{server.address}/v1/events:stream") as stream,
    ):
        await next_event(stream)
        started = asyncio.get_running_loop().time()
        draining = asyncio.create_task(server.drain(grace_seconds=10))
        while (await next_event(stream))[0] != "":
            pass  # the rest of the snapshot, then the end
        await asyncio.wait_for(draining, 5)
        assert asyncio.get_running_loop().time() - started < 3
