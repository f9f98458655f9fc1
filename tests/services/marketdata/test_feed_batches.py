"""MatchingFeed on StreamEventBatches: what a batch publishes, and the fallback to
StreamEvents for an engine that has no StreamEventBatches."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
import pytest

from services.matching.engine import MatchingEngine
from services.matching.grpc_adapter import MatchingEngineServicer
from services.model import Side
from tests.services.marketdata.support import CATALOG, eventually, limit, matching_engine
from tests.services.marketdata.test_feed import make_feed
from trading.v1 import common_pb2, matching_pb2

FALLBACK = "has no StreamEventBatches"


@asynccontextmanager
async def older_engine() -> AsyncIterator[tuple[str, MatchingEngine]]:
    """A real grpc.aio server of a MatchingEngine from before StreamEventBatches:
    its service has StreamEvents and no StreamEventBatches."""
    engine = MatchingEngine(CATALOG, engine_id="old-engine")
    servicer = MatchingEngineServicer(engine)
    handlers = {
        "StreamEvents": grpc.unary_stream_rpc_method_handler(
            servicer.StreamEvents,
            request_deserializer=matching_pb2.StreamEventsRequest.FromString,
            response_serializer=matching_pb2.MarketEvent.SerializeToString,
        )
    }
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("trading.v1.MatchingEngine", handlers),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}", engine
    finally:
        engine.close()
        await server.stop(None)


def fallbacks(caplog: pytest.LogCaptureFixture, level: int) -> int:
    return sum(FALLBACK in r.getMessage() and r.levelno == level for r in caplog.records)


async def test_an_older_engine_is_followed_with_stream_events_said_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="services.marketdata.feed")

    def connects() -> int:
        return sum(r.getMessage().endswith(" connected") for r in caplog.records)

    async with older_engine() as (address, engine):
        limit(engine, "s1", Side.SELL, 10, 101)
        feed, board, fanout = make_feed(address)
        async with feed:
            await eventually(lambda: feed.connected and board.quote("AAPL").ask_price == 101)
            with fanout.subscribe_trades(["AAPL"]) as trades:
                limit(engine, "b1", Side.BUY, 4, 101)
                trade = await anext(trades)
                assert (trade.symbol, trade.price, trade.quantity) == ("AAPL", 101, 4)
                await eventually(lambda: board.quote("AAPL").ask_quantity == 6)
                engine.close()  # ends the stream: the feed reconnects, falls back again
                await eventually(lambda: connects() == 2)
                limit(engine, "b2", Side.BUY, 1, 101)
                assert (await anext(trades)).quantity == 1  # no gap in between
            await eventually(lambda: board.quote("AAPL").volume == 5)
    assert fallbacks(caplog, logging.INFO) == 1  # once per engine
    assert fallbacks(caplog, logging.DEBUG) == 1  # the second connection's
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and "gap" in r.msg]


async def test_a_current_engine_is_followed_with_batches(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="services.marketdata.feed")
    async with matching_engine() as (address, engine):
        feed, board, _ = make_feed(address)
        async with feed:
            await eventually(lambda: feed.connected)
            limit(engine, "s1", Side.SELL, 10, 101)
            limit(engine, "b1", Side.BUY, 4, 101)
            await eventually(lambda: board.quote("AAPL").volume == 4)
    assert fallbacks(caplog, logging.INFO) + fallbacks(caplog, logging.DEBUG) == 0


def quote(symbol: str, bid: int, sequence: int) -> matching_pb2.MarketEvent:
    return matching_pb2.MarketEvent(
        quote=common_pb2.Quote(symbol=symbol, bid_price=bid, bid_quantity=1, sequence=sequence)
    )


def trade(symbol: str, price: int, sequence: int) -> matching_pb2.MarketEvent:
    return matching_pb2.MarketEvent(
        trade=common_pb2.Trade(
            trade_id=f"t{sequence}",
            symbol=symbol,
            price=price,
            quantity=1,
            maker_account_id="maker",
            taker_account_id="taker",
            sequence=sequence,
        )
    )


async def test_a_batch_publishes_what_its_events_one_by_one_would() -> None:
    events = [
        quote("AAPL", 100, 1),  # snapshots
        quote("MSFT", 200, 1),
        trade("MSFT", 201, 2),
        quote("AAPL", 101, 3),
        trade("AAPL", 101, 4),
        quote("AAPL", 100, 5),
        quote("MSFT", 199, 6),
        quote("AAPL", 100, 5),  # a replay: changes nothing
    ]
    seen = []
    for as_batch in (False, True):
        feed, board, fanout = make_feed("unused")
        with (
            fanout.subscribe_quotes(["AAPL", "MSFT"]) as quotes,
            fanout.subscribe_trades(["AAPL", "MSFT"]) as trades,
        ):
            copies = [matching_pb2.MarketEvent.FromString(e.SerializeToString()) for e in events]
            if as_batch:
                feed.apply_batch(copies)
            else:
                for event in copies:
                    feed.apply(event)
            published_quotes = [await anext(quotes) for _ in range(quotes.pending)]
            published_trades = [await anext(trades) for _ in range(trades.pending)]
            seen.append((published_quotes, published_trades, board.quote("AAPL")))
    one_by_one, batched = seen
    assert batched == one_by_one
    published_quotes, published_trades, aapl = batched
    assert [(q.symbol, q.sequence) for q in published_quotes] == [("AAPL", 5), ("MSFT", 6)]
    assert [t.sequence for t in published_trades] == [2, 4]
    assert not published_trades[0].maker_account_id  # the public tape: no accounts
    assert (aapl.bid_price, aapl.last_price, aapl.trade_count, aapl.sequence) == (100, 101, 1, 5)
