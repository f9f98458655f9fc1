"""MarketDataService over real grpc.aio servers, fed by a real matching engine."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from clients.channel_options import plaintext_channel
from services.errors import Unavailable
from services.launcher import free_port
from services.marketdata.app import SERVICE_NAME, MarketDataSettings, build_services
from services.marketdata.fanout import Fanout
from services.marketdata.grpc_adapter import MarketDataFanout, MarketDataServicer
from services.marketdata.quotes import QuoteBoard
from services.matching.engine import MatchingEngine
from services.model import Side
from services.runtime.server import ServiceBinding, serving
from tests.services.marketdata.support import CATALOG, eventually, limit, matching_engine
from trading.v1 import common_pb2, marketdata_pb2, marketdata_pb2_grpc

Stub = marketdata_pb2_grpc.MarketDataServiceStub


@pytest.fixture
async def market(
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[tuple[Stub, MatchingEngine]]:
    """The service as `python -m services.marketdata` builds it, following a real
    engine; yields a client stub and the engine (to make the market move)."""
    monkeypatch.delenv("TRADEMESH_INSTRUMENTS", raising=False)
    async with matching_engine() as (matching_address, engine):
        settings = MarketDataSettings(port=0, matching_address=matching_address)
        async with (
            serving(build_services, settings) as address,
            plaintext_channel(address) as channel,
        ):
            await eventually(lambda: engine.subscriber_count == 1)  # the feed follows it
            yield Stub(channel), engine


async def quote_when(
    stub: Stub, symbol: str, ready: Callable[[common_pb2.Quote], bool]
) -> common_pb2.Quote:
    """GetQuote until the feed has brought the service to the `ready` state."""
    for _ in range(400):
        quote = await stub.GetQuote(marketdata_pb2.GetQuoteRequest(symbol=symbol))
        if ready(quote):
            return quote
        await asyncio.sleep(0.005)
    raise AssertionError(f"the {symbol} quote never got ready; last: {quote}")


def violations(err: grpc.aio.AioRpcError) -> list[tuple[str, str]]:
    status = rpc_status.from_call(err)
    assert status is not None
    bad_request = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad_request)
    return [(v.field, v.description) for v in bad_request.field_violations]


async def test_get_quote_follows_the_book(market: tuple[Stub, MatchingEngine]) -> None:
    stub, engine = market
    assert await stub.GetQuote(marketdata_pb2.GetQuoteRequest(symbol="MSFT")) == common_pb2.Quote(
        symbol="MSFT"
    )
    limit(engine, "b1", Side.BUY, 5, 100)
    limit(engine, "s1", Side.SELL, 7, 101)
    limit(engine, "b2", Side.BUY, 2, 101)

    quote = await quote_when(stub, "AAPL", lambda q: q.trade_count == 1 and q.ask_quantity == 5)
    assert (quote.bid_price, quote.bid_quantity, quote.ask_price, quote.ask_quantity) == (
        100,
        5,
        101,
        5,
    )
    assert (quote.last_price, quote.last_quantity, quote.volume, quote.trade_count) == (
        101,
        2,
        2,
        1,
    )
    assert quote.sequence > 0 and quote.timestamp_ns > 0


async def test_unknown_symbols_are_invalid_arguments(market: tuple[Stub, MatchingEngine]) -> None:
    stub, _ = market
    listed = "listed symbols are AAPL, AMZN, BTCUSD, ESZ6, GOOG, MSFT, TSLA"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetQuote(marketdata_pb2.GetQuoteRequest(symbol="NOPE"))
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert violations(caught.value) == [("symbol", f"unknown symbol 'NOPE'; {listed}")]

    for method in (stub.StreamQuotes, stub.StreamTrades):
        call = method(marketdata_pb2.StreamQuotesRequest(symbols=["AAPL", "NOPE"]))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call.read()
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert violations(caught.value) == [("symbols[1]", f"unknown symbol 'NOPE'; {listed}")]


async def test_stream_quotes_starts_with_the_current_quotes_then_follows(
    market: tuple[Stub, MatchingEngine],
) -> None:
    stub, engine = market
    limit(engine, "s1", Side.SELL, 7, 101)
    await quote_when(stub, "AAPL", lambda q: q.ask_price == 101)
    call = stub.StreamQuotes(marketdata_pb2.StreamQuotesRequest(symbols=["MSFT", "AAPL"]))
    first, second = await call.read(), await call.read()
    assert first == common_pb2.Quote(symbol="MSFT")
    assert (second.symbol, second.ask_price, second.ask_quantity) == ("AAPL", 101, 7)
    limit(engine, "b0", Side.BUY, 1, 1_000, symbol="TSLA")  # not followed: never sent
    limit(engine, "b1", Side.BUY, 3, 101)
    changes = [await call.read()]
    while changes[-1].ask_quantity != 4:  # a trade, then the book top (maybe conflated)
        changes.append(await call.read())
    assert all(change.symbol == "AAPL" for change in changes)
    assert (changes[-1].last_price, changes[-1].volume, changes[-1].trade_count) == (101, 3, 1)
    call.cancel()

    every = stub.StreamQuotes(marketdata_pb2.StreamQuotesRequest())
    symbols = [(await every.read()).symbol for _ in CATALOG.symbols]
    assert symbols == list(CATALOG.symbols)
    every.cancel()


async def test_stream_trades_sends_live_trades_only(market: tuple[Stub, MatchingEngine]) -> None:
    stub, engine = market
    limit(engine, "s0", Side.SELL, 1, 100)
    limit(engine, "b0", Side.BUY, 1, 100)  # before the subscription: not sent
    await quote_when(stub, "AAPL", lambda q: q.trade_count == 1)  # the service saw it
    call = stub.StreamTrades(marketdata_pb2.StreamTradesRequest(symbols=["AAPL"]))
    first = asyncio.ensure_future(call.read())
    for attempt in range(200):  # until the server has registered the subscription
        limit(engine, f"s-msft-{attempt}", Side.SELL, 2, 102, symbol="MSFT")
        limit(engine, f"b-msft-{attempt}", Side.BUY, 2, 102, symbol="MSFT")
        limit(engine, f"s-aapl-{attempt}", Side.SELL, 2, 102)
        limit(engine, f"b-aapl-{attempt}", Side.BUY, 2, 102)
        done, _ = await asyncio.wait([first], timeout=0.01)
        if done:
            break
    trade = await first
    assert (trade.symbol, trade.price, trade.quantity) == ("AAPL", 102, 2)
    assert trade.taker_side == common_pb2.SIDE_BUY
    assert trade.trade_id and not (trade.maker_order_id or trade.taker_account_id)
    call.cancel()


@pytest.fixture
async def hub() -> AsyncIterator[tuple[Stub, QuoteBoard, MarketDataFanout]]:
    """The servicer alone, with a hub the test publishes into directly (a burst
    in one go, which a network feed cannot guarantee)."""
    board = QuoteBoard(CATALOG)
    fanout: MarketDataFanout = Fanout(trade_queue_size=2)
    binding = ServiceBinding(
        SERVICE_NAME,
        MarketDataServicer(board, fanout),
        marketdata_pb2_grpc.add_MarketDataServiceServicer_to_server,
    )
    async with serving([binding]) as address, plaintext_channel(address) as channel:
        yield Stub(channel), board, fanout


def trade(n: int) -> common_pb2.Trade:
    return common_pb2.Trade(trade_id=f"t-{n}", symbol="AAPL", price=100, quantity=1, sequence=n)


async def test_trade_subscriber_that_falls_behind_gets_resource_exhausted(
    hub: tuple[Stub, QuoteBoard, MarketDataFanout],
) -> None:
    stub, _, fanout = hub
    slow = stub.StreamTrades(marketdata_pb2.StreamTradesRequest(symbols=["AAPL"]))
    await eventually(lambda: fanout.trade_subscribers == 1)
    for n in range(1, 4):  # 3 trades at once into a queue of 2
        fanout.publish_trade("AAPL", trade(n))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in slow:
            pass
    assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert caught.value.details() == (
        "trade subscriber fell behind by more than 2 trades; resubscribe"
    )
    assert fanout.trade_subscribers == 0


async def test_cancelled_streams_unsubscribe(
    hub: tuple[Stub, QuoteBoard, MarketDataFanout],
) -> None:
    stub, _, fanout = hub
    quotes = stub.StreamQuotes(marketdata_pb2.StreamQuotesRequest(symbols=["AAPL"]))
    trades = stub.StreamTrades(marketdata_pb2.StreamTradesRequest(symbols=["AAPL"]))
    assert (await quotes.read()).symbol == "AAPL"
    await eventually(lambda: (fanout.quote_subscribers, fanout.trade_subscribers) == (1, 1))
    fanout.publish_trade("AAPL", trade(1))
    assert await trades.read() == trade(1)
    quotes.cancel()
    trades.cancel()
    await eventually(lambda: (fanout.quote_subscribers, fanout.trade_subscribers) == (0, 0))


async def test_leaving_build_services_ends_open_streams_with_unavailable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TRADEMESH_INSTRUMENTS", raising=False)
    # No engine listens there: the service starts anyway and serves empty quotes.
    settings = MarketDataSettings(
        port=0, matching_address=f"127.0.0.1:{free_port()}", plaintext=True
    )
    async with build_services(settings) as bindings:
        assert [b.name for b in bindings] == ["trading.v1.MarketDataService"]
        stream = bindings[0].servicer.StreamTrades(marketdata_pb2.StreamTradesRequest(), None)
        reader = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(0)
        assert not reader.done()
    with pytest.raises(Unavailable, match="shutting down; resubscribe"):
        await reader


async def test_a_slow_quote_reader_is_conflated_not_queued() -> None:
    """A reader that stops reading holds at most its flow-control window of old
    quotes in transit (here a fixed 64 KiB: no BDP window growth); every later
    change waits on the server, conflated, so once it reads again it reaches the
    newest quote after a bounded number of stale ones, however many were published."""
    fanout: MarketDataFanout = Fanout()
    binding = ServiceBinding(
        SERVICE_NAME,
        MarketDataServicer(QuoteBoard(CATALOG), fanout),
        marketdata_pb2_grpc.add_MarketDataServiceServicer_to_server,
    )
    published = 20_000
    async with (
        serving([binding]) as address,
        plaintext_channel(address, [("grpc.http2.bdp_probe", 0)]) as channel,
    ):
        slow = Stub(channel).StreamQuotes(marketdata_pb2.StreamQuotesRequest(symbols=["AAPL"]))
        assert (await slow.read()).symbol == "AAPL"  # subscribed; now it stops reading
        for n in range(1, published + 1):
            fanout.publish_quote("AAPL", common_pb2.Quote(symbol="AAPL", sequence=n))
            await asyncio.sleep(0)  # a feed publishes one event per loop turn
        read = [await slow.read()]
        while read[-1].sequence != published:
            read.append(await slow.read())
        assert len(read) < published // 4, f"{len(read)} stale quotes queued for a slow reader"
        assert [q.sequence for q in read] == sorted(q.sequence for q in read)
        slow.cancel()


async def test_a_reader_that_stopped_reading_does_not_hold_the_write_budget() -> None:
    """With one write in flight allowed, a reader that stopped reading (its
    write stuck on a full flow-control window) would hold the only share for
    good; it is counted out as stalled, so another subscriber still gets its
    quotes."""
    fanout: MarketDataFanout = Fanout()
    binding = ServiceBinding(
        SERVICE_NAME,
        MarketDataServicer(QuoteBoard(CATALOG), fanout, writes_in_flight=1),
        marketdata_pb2_grpc.add_MarketDataServiceServicer_to_server,
    )
    published = 20_000
    request = marketdata_pb2.StreamQuotesRequest(symbols=["AAPL"])
    async with (
        serving([binding]) as address,
        plaintext_channel(address, [("grpc.http2.bdp_probe", 0)]) as stuck_channel,
        plaintext_channel(address) as channel,
    ):
        stuck = Stub(stuck_channel).StreamQuotes(request)
        assert (await stuck.read()).symbol == "AAPL"  # subscribed; now it stops reading
        for n in range(1, published + 1):  # far more than its window holds
            fanout.publish_quote("AAPL", common_pb2.Quote(symbol="AAPL", sequence=n))
            await asyncio.sleep(0)
        live = Stub(channel).StreamQuotes(request)
        first = await asyncio.wait_for(live.read(), timeout=10.0)
        assert first.symbol == "AAPL"  # its start-of-stream quote (the board's)
        fanout.publish_quote("AAPL", common_pb2.Quote(symbol="AAPL", sequence=published + 1))
        assert (await asyncio.wait_for(live.read(), timeout=10.0)).sequence == published + 1
        live.cancel()
        stuck.cancel()
