"""Fanout: conflated quotes, bounded lossless trades, slow subscribers isolated."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from services.errors import ResourceExhausted, Unavailable
from services.marketdata.fanout import Fanout

# Items are opaque to the hub; tests publish (symbol, n) tuples.
Item = tuple[str, int]


async def read(subscription: AsyncIterator[Item], count: int) -> list[Item]:
    return [await anext(subscription) for _ in range(count)]


async def test_quotes_start_with_the_initial_ones_then_follow_changes() -> None:
    fanout: Fanout[Item, Item] = Fanout()
    with fanout.subscribe_quotes(
        ["AAPL", "MSFT"], [("AAPL", ("AAPL", 0)), ("MSFT", ("MSFT", 0))]
    ) as sub:
        assert await read(sub, 2) == [("AAPL", 0), ("MSFT", 0)]
        fanout.publish_quote("AAPL", ("AAPL", 1))
        assert await read(sub, 1) == [("AAPL", 1)]


async def test_a_waiting_quote_reader_wakes_on_publish() -> None:
    fanout: Fanout[Item, Item] = Fanout()
    with fanout.subscribe_quotes(["AAPL"]) as sub:
        reader = asyncio.create_task(anext(sub))
        await asyncio.sleep(0)
        assert not reader.done()
        fanout.publish_quote("AAPL", ("AAPL", 1))
        assert await asyncio.wait_for(reader, 1) == ("AAPL", 1)


async def test_slow_quote_subscriber_sees_only_the_newest_quote_of_each_symbol() -> None:
    fanout: Fanout[Item, Item] = Fanout()
    with fanout.subscribe_quotes(["AAPL", "MSFT"], [("AAPL", ("AAPL", 0))]) as slow:
        for n in range(1, 1_001):
            fanout.publish_quote("AAPL", ("AAPL", n))
            fanout.publish_quote("MSFT", ("MSFT", n))
        assert slow.pending == 2  # never more than one per symbol
        assert await read(slow, 2) == [("AAPL", 1_000), ("MSFT", 1_000)]
        assert slow.pending == 0


async def test_subscribers_get_only_their_symbols() -> None:
    fanout: Fanout[Item, Item] = Fanout()
    with fanout.subscribe_quotes(["AAPL"]) as quotes, fanout.subscribe_trades(["MSFT"]) as trades:
        fanout.publish_quote("MSFT", ("MSFT", 1))
        fanout.publish_quote("AAPL", ("AAPL", 2))
        fanout.publish_trade("AAPL", ("AAPL", 3))
        fanout.publish_trade("MSFT", ("MSFT", 4))
        fanout.publish_trade("TSLA", ("TSLA", 5))  # nobody follows it
        assert await read(quotes, 1) == [("AAPL", 2)]
        assert await read(trades, 1) == [("MSFT", 4)]
        assert quotes.pending == trades.pending == 0


async def test_trades_are_delivered_in_order_and_never_conflated() -> None:
    fanout: Fanout[Item, Item] = Fanout()
    with fanout.subscribe_trades(["AAPL"]) as sub:
        for n in range(100):
            fanout.publish_trade("AAPL", ("AAPL", n))
        assert await read(sub, 100) == [("AAPL", n) for n in range(100)]


async def test_trade_overflow_disconnects_only_the_slow_subscriber() -> None:
    fanout: Fanout[Item, Item] = Fanout(trade_queue_size=3)
    with fanout.subscribe_trades(["AAPL"]) as slow, fanout.subscribe_trades(["AAPL"]) as fast:
        got: list[Item] = []
        for n in range(3):
            fanout.publish_trade("AAPL", ("AAPL", n))
            got += await read(fast, 1)
        assert fanout.trade_subscribers == 2
        fanout.publish_trade("AAPL", ("AAPL", 3))  # the slow one's 4th unread trade
        assert not slow.active and slow.pending == 0  # its backlog is freed at once
        assert fanout.trade_subscribers == 1
        with pytest.raises(ResourceExhausted) as caught:
            await anext(slow)
        assert caught.value.message == (
            "trade subscriber fell behind by more than 3 trades; resubscribe"
        )
        fanout.publish_trade("AAPL", ("AAPL", 4))
        got += await read(fast, 2)
        assert got == [("AAPL", n) for n in range(5)]


async def test_fast_subscribers_are_unaffected_by_one_that_never_reads() -> None:
    fanout: Fanout[Item, Item] = Fanout(trade_queue_size=100)
    total = 5_000
    stalled_trades = fanout.subscribe_trades(["AAPL"])
    stalled_quotes = fanout.subscribe_quotes(["AAPL"])

    async def consume_trades() -> list[Item]:
        with fanout.subscribe_trades(["AAPL"]) as sub:
            return await read(sub, total)

    async def consume_quotes() -> Item:
        with fanout.subscribe_quotes(["AAPL"]) as sub:
            while True:
                quote = await anext(sub)
                if quote[1] == total - 1:
                    return quote

    trade_readers = [asyncio.create_task(consume_trades()) for _ in range(3)]
    quote_reader = asyncio.create_task(consume_quotes())
    await asyncio.sleep(0)  # let them subscribe
    for n in range(total):
        fanout.publish_trade("AAPL", ("AAPL", n))
        fanout.publish_quote("AAPL", ("AAPL", n))
        if n % 50 == 49:
            await asyncio.sleep(0)  # the feed awaits its next event about this often
    async with asyncio.timeout(2):
        for reader in trade_readers:
            assert await reader == [("AAPL", n) for n in range(total)]
        assert await quote_reader == ("AAPL", total - 1)
    # The stalled ones cost bounded memory: dropped from trades, conflated for quotes.
    assert not stalled_trades.active and stalled_trades.pending == 0
    assert stalled_quotes.pending == 1


async def test_leaving_the_block_or_cancelling_unsubscribes() -> None:
    fanout: Fanout[Item, Item] = Fanout()
    with fanout.subscribe_quotes(["AAPL", "MSFT"]), fanout.subscribe_trades(["AAPL"]):
        assert (fanout.quote_subscribers, fanout.trade_subscribers) == (1, 1)
    assert (fanout.quote_subscribers, fanout.trade_subscribers) == (0, 0)

    async def stream() -> None:
        with fanout.subscribe_trades(["AAPL"]) as sub:
            async for _ in sub:
                pass

    task = asyncio.create_task(stream())
    await asyncio.sleep(0)
    assert fanout.trade_subscribers == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert fanout.trade_subscribers == 0
    fanout.publish_trade("AAPL", ("AAPL", 1))  # nobody left: a no-op


async def test_unsubscribed_reader_stops() -> None:
    fanout: Fanout[Item, Item] = Fanout()
    sub = fanout.subscribe_quotes(["AAPL"], [("AAPL", ("AAPL", 0))])
    reader = asyncio.create_task(read(sub, 2))
    await asyncio.sleep(0)
    sub.unsubscribe()
    with pytest.raises(StopAsyncIteration):
        await reader


async def test_close_ends_every_subscription_with_the_error() -> None:
    fanout: Fanout[Item, Item] = Fanout()
    quotes = fanout.subscribe_quotes(["AAPL"], [("AAPL", ("AAPL", 0))])
    trades = fanout.subscribe_trades(["AAPL"])
    waiting = asyncio.create_task(anext(trades))
    await asyncio.sleep(0)
    fanout.close(Unavailable("shutting down; resubscribe"))
    assert (fanout.quote_subscribers, fanout.trade_subscribers) == (0, 0)
    with pytest.raises(Unavailable):
        await waiting
    with pytest.raises(Unavailable):
        await anext(quotes)


def test_trade_queue_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Fanout(trade_queue_size=0)
