from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import pytest

from services.errors import InvalidArgument, ResourceExhausted
from services.instruments import DEFAULT_INSTRUMENTS, InstrumentCatalog
from services.matching.book import LevelView
from services.matching.engine import ExecutionReport, MatchingEngine
from services.matching.feed import MarketEvent, Quote, Subscription, Trade
from services.model import OrderStatus, OrderType, Side, TimeInForce

BUY, SELL = Side.BUY, Side.SELL
LIMIT, MARKET = OrderType.LIMIT, OrderType.MARKET
GTC, IOC = TimeInForce.GTC, TimeInForce.IOC


def make_engine(feed_queue_size: int = 1000) -> MatchingEngine:
    return MatchingEngine(
        InstrumentCatalog(DEFAULT_INSTRUMENTS), engine_id="me1", feed_queue_size=feed_queue_size
    )


def submit(
    engine: MatchingEngine,
    order_id: str,
    side: int,
    quantity: int,
    price: int = 0,
    *,
    type: int = LIMIT,
    tif: int = 0,
    symbol: str = "AAPL",
    account_id: str | None = None,
) -> ExecutionReport:
    return engine.submit(
        order_id=order_id,
        account_id=account_id or f"acct-{order_id}",
        symbol=symbol,
        side=side,
        type=type,
        time_in_force=tif,
        quantity=quantity,
        price=price,
    )


async def take(subscription: Subscription, count: int) -> list[MarketEvent]:
    """The next `count` events, which the tests have already caused."""
    return [await asyncio.wait_for(anext(subscription), 1) for _ in range(count)]


# --- matching and reports ---------------------------------------------------------


def test_same_price_fills_in_arrival_order_at_maker_price() -> None:
    engine = make_engine()
    submit(engine, "s1", SELL, 5, 10_000)
    submit(engine, "s2", SELL, 5, 10_000)
    before = time.time_ns()
    report = submit(engine, "b1", BUY, 7, 10_100)
    assert report.status is OrderStatus.FILLED
    assert (report.filled_quantity, report.resting_quantity) == (7, 0)
    first, second = report.trades
    assert first == Trade(
        trade_id="me1-1",
        symbol="AAPL",
        price=10_000,
        quantity=5,
        maker_order_id="s1",
        taker_order_id="b1",
        taker_side=BUY,
        maker_account_id="acct-s1",
        taker_account_id="acct-b1",
        timestamp_ns=first.timestamp_ns,
        sequence=3,  # 1 and 2 were the quotes of the resting sells
    )
    assert (second.trade_id, second.maker_order_id, second.quantity) == ("me1-2", "s2", 2)
    assert second.sequence == 4
    assert before <= first.timestamp_ns <= time.time_ns()


def test_better_price_first() -> None:
    engine = make_engine()
    submit(engine, "b-low", BUY, 5, 9_900)
    submit(engine, "b-high", BUY, 5, 10_000)
    report = submit(engine, "s1", SELL, 10, 9_900)
    assert [(t.maker_order_id, t.price) for t in report.trades] == [
        ("b-high", 10_000),
        ("b-low", 9_900),
    ]


def test_partial_fill_of_taker_rests_the_gtc_rest() -> None:
    engine = make_engine()
    submit(engine, "s1", SELL, 3, 10_000)
    report = submit(engine, "b1", BUY, 10, 10_000)
    assert report.status is OrderStatus.PARTIALLY_FILLED
    assert (report.filled_quantity, report.resting_quantity) == (3, 7)
    assert engine.book("AAPL").bids == (LevelView(10_000, 7, 1),)


def test_partial_fill_of_maker_leaves_its_rest_resting() -> None:
    engine = make_engine()
    assert submit(engine, "s1", SELL, 10, 10_000).status is OrderStatus.NEW
    assert submit(engine, "b1", BUY, 4, 10_000).status is OrderStatus.FILLED
    assert engine.book("AAPL").asks == (LevelView(10_000, 6, 1),)
    assert engine.cancel("AAPL", "s1") == 6


def test_ioc_rest_is_canceled() -> None:
    engine = make_engine()
    submit(engine, "s1", SELL, 3, 10_000)
    report = submit(engine, "b1", BUY, 10, 10_000, tif=IOC)
    assert report.status is OrderStatus.CANCELED
    assert (report.filled_quantity, report.resting_quantity) == (3, 0)
    assert engine.book("AAPL").bids == ()


def test_market_sweeps_levels_and_rest_is_canceled() -> None:
    engine = make_engine()
    submit(engine, "s1", SELL, 2, 10_000)
    submit(engine, "s2", SELL, 2, 20_000)
    report = submit(engine, "b1", BUY, 5, type=MARKET)
    assert [(t.price, t.quantity) for t in report.trades] == [(10_000, 2), (20_000, 2)]
    assert report.status is OrderStatus.CANCELED
    assert (report.filled_quantity, report.resting_quantity) == (4, 0)
    assert engine.book("AAPL").asks == ()


def test_market_order_on_empty_book_is_canceled_with_nothing_filled() -> None:
    engine = make_engine()
    report = submit(engine, "b1", BUY, 5, type=MARKET, tif=IOC)
    assert report == ExecutionReport("b1", "AAPL", OrderStatus.CANCELED, 0, 0, ())


def test_books_are_per_symbol() -> None:
    engine = make_engine()
    submit(engine, "s1", SELL, 5, 10_000, symbol="MSFT")
    report = submit(engine, "b1", BUY, 5, 10_000, symbol="AAPL")
    assert report.status is OrderStatus.NEW
    assert engine.book("MSFT").asks == (LevelView(10_000, 5, 1),)


def test_trade_ids_are_unique_across_symbols() -> None:
    engine = make_engine()
    ids = []
    for symbol in ("AAPL", "MSFT"):
        submit(engine, f"s-{symbol}", SELL, 1, 10_000, symbol=symbol)
        ids += [
            t.trade_id for t in submit(engine, f"b-{symbol}", BUY, 1, 10_000, symbol=symbol).trades
        ]
    assert ids == ["me1-1", "me1-2"]


# --- idempotency and cancel ------------------------------------------------------------


def test_submit_is_idempotent_on_order_id() -> None:
    engine = make_engine()
    submit(engine, "s1", SELL, 5, 10_000)
    first = submit(engine, "b1", BUY, 5, 10_000)
    sequence = engine.sequence
    again = submit(engine, "b1", BUY, 5, 10_000)
    assert again == replace(first, replayed=True) and not first.replayed
    assert engine.sequence == sequence  # nothing matched or published again
    submit(engine, "s1", SELL, 5, 10_000)  # the maker id again: not booked twice
    assert engine.book("AAPL").asks == ()


def test_cancel_resting_order() -> None:
    engine = make_engine()
    submit(engine, "b1", BUY, 5, 10_000)
    assert engine.cancel("AAPL", "b1") == 5
    assert engine.cancel("AAPL", "b1") == 0
    assert engine.book("AAPL").bids == ()


def test_cancel_of_filled_order_is_zero() -> None:
    engine = make_engine()
    submit(engine, "b1", BUY, 5, 10_000)
    submit(engine, "s1", SELL, 5, 10_000)
    assert engine.cancel("AAPL", "b1") == 0
    assert engine.cancel("AAPL", "s1") == 0


def test_cancel_before_submit_leaves_a_tombstone() -> None:
    engine = make_engine()
    submit(engine, "s1", SELL, 5, 10_000)
    assert engine.cancel("AAPL", "late") == 0
    report = submit(engine, "late", BUY, 5, 10_000)
    assert report == ExecutionReport("late", "AAPL", OrderStatus.CANCELED, 0, 0, ())
    assert engine.book("AAPL").asks == (LevelView(10_000, 5, 1),)
    assert submit(engine, "late", BUY, 5, 10_000) == replace(report, replayed=True)


def test_cancel_with_the_wrong_symbol_names_the_right_one() -> None:
    engine = make_engine()
    submit(engine, "b1", BUY, 5, 10_000)
    with pytest.raises(InvalidArgument) as caught:
        engine.cancel("MSFT", "b1")
    (violation,) = caught.value.violations
    assert violation.field == "symbol"
    assert "cancel it with symbol AAPL" in violation.description
    assert engine.cancel("AAPL", "b1") == 5


@pytest.mark.parametrize(
    ("symbol", "order_id", "field", "says"),
    [
        ("XYZ", "b1", "symbol", "listed symbols are AAPL, AMZN, BTCUSD"),
        ("", "b1", "symbol", "is required"),
        ("AAPL", "", "order_id", "is required"),
        ("AAPL", "has space", "order_id", "must be 1 to 64 letters"),
    ],
)
def test_cancel_validation(symbol: str, order_id: str, field: str, says: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        make_engine().cancel(symbol, order_id)
    assert [v.field for v in caught.value.violations] == [field]
    assert says in caught.value.violations[0].description


# --- validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field", "says"),
    [
        ({"symbol": "XYZ"}, "symbol", "unknown symbol 'XYZ'; listed symbols are AAPL, AMZN"),
        ({"quantity": 0}, "quantity", "must be positive, got 0"),
        ({"quantity": -3}, "quantity", "must be positive, got -3"),
        ({"symbol": "BTCUSD", "quantity": 5, "price": 1_000_000}, "quantity", "lot size 10"),
        ({"symbol": "TSLA", "price": 10_001}, "price", "tick size 5"),
        ({"price": 99}, "price", "price band 100..1000000"),
        ({"price": 1_000_001}, "price", "price band"),
        ({"price": 0}, "price", "must be positive for a LIMIT order"),
        ({"type": MARKET, "price": 10_000}, "price", "must be 0 for a MARKET order"),
        ({"type": MARKET, "price": 0, "time_in_force": GTC}, "time_in_force", "use IOC"),
        ({"type": 0}, "type", "ORDER_TYPE_LIMIT or ORDER_TYPE_MARKET"),
        ({"side": 0}, "side", "SIDE_BUY or SIDE_SELL"),
        ({"time_in_force": 7}, "time_in_force", "TIME_IN_FORCE_GTC or TIME_IN_FORCE_IOC"),
        ({"order_id": ""}, "order_id", "is required"),
        ({"account_id": ""}, "account_id", "is required"),
        ({"account_id": "a/b"}, "account_id", "must be 1 to 64 letters"),
    ],
)
def test_submit_validation(changes: dict[str, object], field: str, says: str) -> None:
    request: dict[str, object] = {
        "order_id": "o1",
        "account_id": "acct-1",
        "symbol": "AAPL",
        "side": BUY,
        "type": LIMIT,
        "time_in_force": 0,
        "quantity": 10,
        "price": 10_000,
    } | changes
    engine = make_engine()
    with pytest.raises(InvalidArgument) as caught:
        engine.submit(**request)  # type: ignore[arg-type]
    assert [v.field for v in caught.value.violations] == [field]
    assert says in caught.value.violations[0].description
    assert engine.sequence == 0


def test_submit_names_every_violation_at_once() -> None:
    with pytest.raises(InvalidArgument) as caught:
        submit(make_engine(), "", 0, 0, 10_000, account_id="a b")
    assert {v.field for v in caught.value.violations} == {
        "order_id",
        "account_id",
        "side",
        "quantity",
    }


def test_invalid_retry_of_known_order_is_still_refused() -> None:
    engine = make_engine()
    submit(engine, "b1", BUY, 5, 10_000)
    with pytest.raises(InvalidArgument):
        submit(engine, "b1", BUY, 0, 10_000)


# --- book snapshot -----------------------------------------------------------------------


def test_book_depth_defaults_to_ten_best_first() -> None:
    engine = make_engine()
    for i in range(12):
        submit(engine, f"b{i}", BUY, 1 + i, 10_000 + i)
        submit(engine, f"s{i}", SELL, 1, 20_000 + i)
    snapshot = engine.book("AAPL")
    assert [level.price for level in snapshot.bids] == [10_011 - i for i in range(10)]
    assert [level.price for level in snapshot.asks] == [20_000 + i for i in range(10)]
    assert snapshot.bids[0] == LevelView(10_011, 12, 1)
    assert snapshot.sequence == engine.sequence > 0
    one = engine.book("AAPL", 1)
    assert (len(one.bids), len(one.asks)) == (1, 1)
    assert len(engine.book("AAPL", 1000).bids) == 12


@pytest.mark.parametrize(
    ("symbol", "depth", "field"),
    [("AAPL", 1001, "depth"), ("AAPL", -1, "depth"), ("NOPE", 5, "symbol"), ("", 5, "symbol")],
)
def test_book_validation(symbol: str, depth: int, field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        make_engine().book(symbol, depth)
    assert [v.field for v in caught.value.violations] == [field]


# --- event feed ---------------------------------------------------------------------------


async def test_feed_starts_with_snapshot_then_trades_then_quote() -> None:
    engine = make_engine()
    submit(engine, "s1", SELL, 5, 10_000)
    submit(engine, "s2", SELL, 5, 10_100)
    start = engine.sequence
    with engine.subscribe(["AAPL"]) as feed:
        (snapshot,) = await take(feed, 1)
        assert isinstance(snapshot, Quote)
        assert (snapshot.symbol, snapshot.sequence) == ("AAPL", start)
        assert (snapshot.ask_price, snapshot.ask_quantity) == (10_000, 5)
        report = submit(engine, "b1", BUY, 7, 10_100)
        events = await take(feed, 3)
        assert events[:2] == list(report.trades)
        quote = events[2]
        assert isinstance(quote, Quote)
        assert (quote.bid_price, quote.bid_quantity, quote.ask_price, quote.ask_quantity) == (
            0,
            0,
            10_100,
            3,
        )
        assert [e.sequence for e in events] == [start + 1, start + 2, start + 3]
        assert engine.sequence == start + 3
        assert feed.backlog == 0
    assert engine.subscriber_count == 0


async def test_empty_symbol_list_follows_every_symbol() -> None:
    engine = make_engine()
    with engine.subscribe() as feed:
        snapshot = await take(feed, len(DEFAULT_INSTRUMENTS))
        assert [q.symbol for q in snapshot] == [i.symbol for i in DEFAULT_INSTRUMENTS]
        submit(engine, "b1", BUY, 5, 10_000, symbol="MSFT")
        submit(engine, "b2", BUY, 5, 10_000, symbol="GOOG")
        events = await take(feed, 2)
        assert [(e.symbol, e.sequence) for e in events] == [("MSFT", 1), ("GOOG", 2)]


async def test_symbol_filter_skips_other_symbols() -> None:
    engine = make_engine()
    with engine.subscribe(["GOOG", "GOOG"]) as feed:
        assert len(await take(feed, 1)) == 1  # duplicates collapse to one snapshot
        submit(engine, "b1", BUY, 5, 10_000, symbol="MSFT")
        submit(engine, "b2", BUY, 5, 10_000, symbol="GOOG")
        (event,) = await take(feed, 1)
        assert (event.symbol, event.sequence) == ("GOOG", 2)
        assert feed.backlog == 0


def test_subscribe_to_unknown_symbol_is_invalid() -> None:
    with pytest.raises(InvalidArgument) as caught:
        make_engine().subscribe(["AAPL", "XYZ"])
    (violation,) = caught.value.violations
    assert violation.field == "symbols[1]"
    assert "listed symbols are" in violation.description


async def test_quote_only_when_top_changes() -> None:
    engine = make_engine()
    with engine.subscribe(["AAPL"]) as feed:
        await take(feed, 1)
        submit(engine, "b1", BUY, 5, 10_000)  # new best bid
        submit(engine, "b2", BUY, 5, 9_900)  # below the top: no quote
        submit(engine, "b3", BUY, 5, 10_000)  # more quantity at the top: quote
        engine.cancel("AAPL", "b2")  # not at the top: no quote
        engine.cancel("AAPL", "unknown")  # nothing: no quote
        events = await take(feed, 2)
        assert [(e.bid_price, e.bid_quantity) for e in events if isinstance(e, Quote)] == [
            (10_000, 5),
            (10_000, 10),
        ]
        assert feed.backlog == 0
        engine.cancel("AAPL", "b1")  # top quantity shrinks: quote
        (quote,) = await take(feed, 1)
        assert isinstance(quote, Quote)
        assert (quote.bid_price, quote.bid_quantity, quote.sequence) == (10_000, 5, 3)


async def test_slow_subscriber_is_dropped_without_blocking_submit() -> None:
    engine = make_engine(feed_queue_size=3)
    slow = engine.subscribe(["AAPL"])
    fast = engine.subscribe(["AAPL"])
    await take(fast, 1)
    seen: list[MarketEvent] = []
    for i in range(10):  # each resting bid at a new best price: one quote per submit
        submit(engine, f"b{i}", BUY, 1, 10_000 + i)
        seen += await take(fast, 1)
    assert [e.sequence for e in seen] == list(range(1, 11))
    assert engine.subscriber_count == 1
    assert slow.closed
    with pytest.raises(ResourceExhausted, match="fell behind by more than 3 events; resubscribe"):
        await anext(slow)  # at once: its stale backlog, snapshot included, is gone
    fast.close()
    assert engine.subscriber_count == 0


async def test_waiting_subscriber_wakes_on_close() -> None:
    engine = make_engine()
    feed = engine.subscribe(["AAPL"])
    await take(feed, 1)
    reader = asyncio.create_task(anext(feed))
    await asyncio.sleep(0)  # let it block on the empty queue
    engine.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(reader, 1)
    assert engine.subscriber_count == 0


async def test_closing_subscription_stops_delivery() -> None:
    engine = make_engine()
    feed = engine.subscribe()
    feed.close()
    feed.close()
    submit(engine, "b1", BUY, 5, 10_000)
    assert [e async for e in feed] == []


def test_subscriber_count_counts_subscriptions_not_symbols() -> None:
    engine = MatchingEngine(InstrumentCatalog.default(), engine_id="count")
    engine.subscribe(("AAPL", "MSFT", "GOOG"))
    engine.subscribe(())
    assert engine.subscriber_count == 2
