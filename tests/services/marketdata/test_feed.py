"""MatchingFeed against a real matching engine server: follow, reconnect, restart."""

from __future__ import annotations

import logging
from itertools import groupby

import pytest

from discovery import Backoff
from services.errors import Unavailable
from services.launcher import free_port
from services.marketdata.fanout import Fanout
from services.marketdata.feed import MatchingFeed
from services.marketdata.grpc_adapter import MarketDataFanout
from services.marketdata.quotes import Quote, QuoteBoard
from services.model import Side
from tests.services.marketdata.support import CATALOG, eventually, limit, matching_engine
from trading.v1 import common_pb2, matching_pb2


def make_feed(address: str) -> tuple[MatchingFeed, QuoteBoard, MarketDataFanout]:
    board = QuoteBoard(CATALOG)
    fanout: MarketDataFanout = Fanout()
    return (
        MatchingFeed(address, board, fanout, backoff=Backoff(initial=0.01, maximum=0.05)),
        board,
        fanout,
    )


async def test_feed_applies_the_engine_events_and_publishes_them() -> None:
    async with matching_engine() as (address, engine):
        limit(engine, "s1", Side.SELL, 10, 101)  # before the feed: seen in its snapshot
        feed, board, fanout = make_feed(address)
        async with feed:
            await eventually(lambda: feed.connected and board.quote("AAPL").ask_price == 101)
            assert board.quote("AAPL").ask_quantity == 10
            with (
                fanout.subscribe_trades(["AAPL"]) as trades,
                fanout.subscribe_quotes(["AAPL"]) as quotes,
            ):
                limit(engine, "b1", Side.BUY, 4, 101)
                trade = await anext(trades)
                assert isinstance(trade, common_pb2.Trade)
                assert (trade.symbol, trade.price, trade.quantity) == ("AAPL", 101, 4)
                # The public tape carries no account or order ids.
                assert not (trade.maker_order_id or trade.taker_order_id)
                assert not (trade.maker_account_id or trade.taker_account_id)
                await eventually(lambda: board.quote("AAPL").ask_quantity == 6)
                quote = board.quote("AAPL")
                assert (quote.last_price, quote.last_quantity, quote.volume) == (101, 4, 4)
                assert quote.trade_count == 1
                assert quotes.pending == 1  # conflated: the newest quote only
                assert await anext(quotes) == common_pb2.Quote(
                    symbol="AAPL",
                    ask_price=101,
                    ask_quantity=6,
                    last_price=101,
                    last_quantity=4,
                    volume=4,
                    trade_count=1,
                    timestamp_ns=quote.timestamp_ns,
                    sequence=quote.sequence,
                )
        assert not feed.connected


async def test_reconnect_to_the_same_engine_does_not_count_trades_twice(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="services.marketdata.feed")

    def connects() -> int:
        return sum(r.getMessage().endswith(" connected") for r in caplog.records)

    async with matching_engine() as (address, engine):
        feed, board, fanout = make_feed(address)
        async with feed:
            await eventually(lambda: feed.connected)
            limit(engine, "s1", Side.SELL, 10, 101)
            limit(engine, "b1", Side.BUY, 4, 101)
            await eventually(lambda: board.quote("AAPL").ask_quantity == 6)
            with fanout.subscribe_trades(["AAPL"]) as trades:
                engine.close()  # ends every feed stream; the engine keeps serving
                await eventually(lambda: connects() == 2)
                # The engine's start-of-stream quotes replayed what the board had.
                assert board.quote("AAPL").trade_count == 1
                limit(engine, "b2", Side.BUY, 1, 101)
                # Nothing happened in between: trade streams go on.
                assert (await anext(trades)).quantity == 1
            await eventually(lambda: board.quote("AAPL").ask_quantity == 5)
            quote = board.quote("AAPL")
            assert (quote.volume, quote.trade_count) == (5, 2)


async def test_reconnects_after_the_engine_stops_and_starts_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="services.marketdata.feed")

    def states() -> list[str]:
        """The state each feed log line reports: connected, lost, unreachable, gap."""
        return [
            r.getMessage().removeprefix(f"matching feed {address} ").split(":")[0]
            for r in caplog.records
            if r.name == "services.marketdata.feed"
        ]

    port = free_port()
    async with matching_engine(port) as (address, engine):
        feed, board, fanout = make_feed(address)
        await feed.start()
        await eventually(lambda: feed.connected)
        limit(engine, "s1", Side.SELL, 10, 101)
        limit(engine, "b1", Side.BUY, 4, 101)
        await eventually(lambda: board.quote("AAPL").volume == 4)
    try:
        await eventually(lambda: "unreachable" in states())
        assert not feed.connected
        # While the engine is down the last known quotes are still served.
        assert board.quote("AAPL").ask_quantity == 6
        waiting = fanout.subscribe_trades(["AAPL"])
        async with matching_engine(port) as (_, restarted):
            await eventually(lambda: feed.connected)
            # Its trades before the feed reconnected are lost: said, not skipped.
            with pytest.raises(Unavailable, match="trades may be missing; resubscribe"):
                await anext(waiting)
            # A restarted engine begins a new feed: its empty book replaces ours.
            await eventually(lambda: board.quote("AAPL").ask_quantity == 0)
            assert board.quote("AAPL").volume == 0
            with fanout.subscribe_trades(["AAPL"]) as trades:
                limit(restarted, "s2", Side.SELL, 3, 105)
                limit(restarted, "b2", Side.BUY, 3, 105)
                assert (await anext(trades)).price == 105
            await eventually(lambda: board.quote("AAPL").volume == 3)
            await feed.stop()  # while connected: stopping is not a lost feed
    finally:
        await feed.stop()
    # One line per state change; a reconnect racing the old server's drain may
    # add a second, different failure.
    assert [state for state, _ in groupby(states())] == [
        "connected",
        "lost",
        "unreachable",
        "connected",
        "gap",
    ]


async def test_unreachable_engine_logs_once_and_keeps_the_last_quotes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="services.marketdata.feed")
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    feed, board, _ = make_feed(address)
    board.apply_book_top("AAPL", 100, 1, 101, 1, timestamp_ns=1, sequence=1)
    async with feed:
        await eventually(lambda: sum(r.levelno == logging.DEBUG for r in caplog.records) >= 3)
        assert not feed.connected
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1  # one line per state change, not per attempt
    assert warnings[0].getMessage().startswith(f"matching feed {address} unreachable: UNAVAILABLE")
    assert board.quote("AAPL").bid_price == 100


def test_the_first_quote_of_a_symbol_on_a_connection_is_its_snapshot() -> None:
    board = QuoteBoard(CATALOG)
    fanout: MarketDataFanout = Fanout()
    feed = MatchingFeed("unused", board, fanout)
    board.apply_trade("AAPL", 101, 2, timestamp_ns=1, sequence=3)
    board.apply_book_top("AAPL", 100, 1, 101, 1, timestamp_ns=1, sequence=4)
    with fanout.subscribe_quotes(["AAPL"]) as quotes:
        # The engine's current quote at sequence 9: the book moved while we were away.
        snapshot = common_pb2.Quote(symbol="AAPL", bid_price=99, bid_quantity=1, sequence=9)
        feed.apply(matching_pb2.MarketEvent(quote=snapshot))
        assert board.quote("AAPL") == Quote("AAPL", 99, 1, 0, 0, 101, 2, 2, 1, 0, 9)
        # The same quote again is now a live event, and a replay.
        feed.apply(matching_pb2.MarketEvent(quote=snapshot))
        assert quotes.pending == 1
