from __future__ import annotations

import random
from dataclasses import dataclass

from services.matching.book import EMPTY_TOP, Fill, LevelView, OrderBook, Top
from services.model import Side

BUY, SELL = Side.BUY, Side.SELL


def rest(book: OrderBook, order_id: str, side: Side, quantity: int, price: int) -> None:
    result = book.submit(order_id, f"acct-{order_id}", side, quantity, price, rest=True)
    assert result.fills == [], "helper expects a non-crossing order"


def test_same_price_fills_in_arrival_order() -> None:
    book = OrderBook("AAPL")
    rest(book, "s1", SELL, 5, 100)
    rest(book, "s2", SELL, 5, 100)
    result = book.submit("b1", "acct-b", BUY, 7, 100, rest=True)
    assert result.fills == [Fill("s1", "acct-s1", 100, 5), Fill("s2", "acct-s2", 100, 2)]
    assert (result.filled, result.resting) == (7, 0)
    assert book.depth(10) == ([], [LevelView(100, 3, 1)])


def test_better_price_fills_first_and_trades_at_maker_price() -> None:
    book = OrderBook("AAPL")
    rest(book, "s-worse", SELL, 5, 102)
    rest(book, "s-better", SELL, 5, 101)
    result = book.submit("b1", "acct-b", BUY, 10, 105, rest=True)
    assert [(f.maker_order_id, f.price) for f in result.fills] == [
        ("s-better", 101),
        ("s-worse", 102),
    ]


def test_sell_takes_highest_bid_first() -> None:
    book = OrderBook("AAPL")
    rest(book, "b-low", BUY, 5, 99)
    rest(book, "b-high", BUY, 5, 100)
    result = book.submit("s1", "acct-s", SELL, 6, 99, rest=True)
    assert [(f.maker_order_id, f.price, f.quantity) for f in result.fills] == [
        ("b-high", 100, 5),
        ("b-low", 99, 1),
    ]
    assert book.top() == Top(99, 4, 0, 0)


def test_limit_stops_at_its_price_and_rest_rests() -> None:
    book = OrderBook("AAPL")
    rest(book, "s1", SELL, 5, 100)
    rest(book, "s2", SELL, 5, 101)
    result = book.submit("b1", "acct-b", BUY, 8, 100, rest=True)
    assert [f.quantity for f in result.fills] == [5]
    assert (result.filled, result.resting) == (5, 3)
    assert book.top() == Top(100, 3, 101, 5)
    assert "b1" in book


def test_partial_fill_of_maker_keeps_its_priority() -> None:
    book = OrderBook("AAPL")
    rest(book, "s1", SELL, 10, 100)
    rest(book, "s2", SELL, 10, 100)
    book.submit("b1", "acct-b", BUY, 4, 100, rest=True)
    result = book.submit("b2", "acct-b", BUY, 8, 100, rest=True)
    assert [(f.maker_order_id, f.quantity) for f in result.fills] == [("s1", 6), ("s2", 2)]
    assert "s1" not in book and "s2" in book


def test_ioc_rest_is_canceled() -> None:
    book = OrderBook("AAPL")
    rest(book, "s1", SELL, 5, 100)
    result = book.submit("b1", "acct-b", BUY, 8, 100, rest=False)
    assert (result.filled, result.resting) == (5, 0)
    assert book.top() == EMPTY_TOP
    assert len(book) == 0


def test_market_sweeps_levels_and_rest_is_canceled() -> None:
    book = OrderBook("AAPL")
    rest(book, "s1", SELL, 5, 100)
    rest(book, "s2", SELL, 5, 150)
    rest(book, "s3", SELL, 5, 9_000)
    result = book.submit("b1", "acct-b", BUY, 20, None, rest=False)
    assert [f.price for f in result.fills] == [100, 150, 9_000]
    assert (result.filled, result.resting) == (15, 0)
    assert book.depth(10) == ([], [])


def test_market_on_empty_book_fills_nothing() -> None:
    book = OrderBook("AAPL")
    result = book.submit("s1", "acct-s", SELL, 5, None, rest=False)
    assert (result.fills, result.filled, result.resting) == ([], 0, 0)


def test_cancel_returns_remaining_and_is_zero_after() -> None:
    book = OrderBook("AAPL")
    rest(book, "b1", BUY, 10, 100)
    book.submit("s1", "acct-s", SELL, 4, 100, rest=True)
    assert book.cancel("b1") == 6
    assert book.cancel("b1") == 0
    assert book.cancel("never-seen") == 0
    assert book.top() == EMPTY_TOP


def test_canceled_order_in_middle_of_queue_is_skipped() -> None:
    book = OrderBook("AAPL")
    for order_id in ("b1", "b2", "b3"):
        rest(book, order_id, BUY, 5, 100)
    assert book.cancel("b2") == 5
    assert book.depth(1) == ([LevelView(100, 10, 2)], [])
    result = book.submit("s1", "acct-s", SELL, 10, 100, rest=True)
    assert [f.maker_order_id for f in result.fills] == ["b1", "b3"]
    assert book.top() == EMPTY_TOP


def test_filled_order_cannot_be_canceled() -> None:
    book = OrderBook("AAPL")
    rest(book, "b1", BUY, 5, 100)
    book.submit("s1", "acct-s", SELL, 5, 100, rest=True)
    assert book.cancel("b1") == 0


def test_cancel_of_a_non_best_level_keeps_the_rest_sorted() -> None:
    book = OrderBook("AAPL")
    for i, price in enumerate((100, 101, 102)):
        rest(book, f"s{i}", SELL, 1, price)
    assert book.cancel("s1") == 1
    assert book.depth(10) == ([], [LevelView(100, 1, 1), LevelView(102, 1, 1)])


def test_depth_aggregates_best_first_and_truncates() -> None:
    book = OrderBook("AAPL")
    rest(book, "b1", BUY, 1, 98)
    rest(book, "b2", BUY, 2, 99)
    rest(book, "b3", BUY, 3, 99)
    rest(book, "s1", SELL, 4, 101)
    rest(book, "s2", SELL, 5, 103)
    rest(book, "s3", SELL, 6, 102)
    assert book.depth(2) == (
        [LevelView(99, 5, 2), LevelView(98, 1, 1)],
        [LevelView(101, 4, 1), LevelView(102, 6, 1)],
    )
    assert book.top() == Top(99, 5, 101, 4)


def test_dead_entries_of_a_long_lived_level_are_compacted() -> None:
    book = OrderBook("AAPL")
    rest(book, "front", BUY, 1, 100)
    for i in range(1000):
        rest(book, f"b{i}", BUY, 1, 100)
        rest(book, f"tail{i}", BUY, 1, 100)
        assert book.cancel(f"b{i}") == 1
    level = book._bids.levels[100]
    assert level.count == 1001
    assert len(level.orders) <= 2 * level.count + 16


@dataclass
class _ModelOrder:
    arrival: int
    order_id: str
    side: Side
    price: int
    remaining: int


def _model_levels(model: list[_ModelOrder], side: Side) -> list[LevelView]:
    prices = sorted({m.price for m in model if m.side is side}, reverse=side is BUY)
    return [
        LevelView(
            p,
            sum(m.remaining for m in model if m.side is side and m.price == p),
            sum(1 for m in model if m.side is side and m.price == p),
        )
        for p in prices
    ]


def test_matches_a_naive_reference_book() -> None:
    """Random orders and cancels against a list-based model of price-time priority."""
    rng = random.Random(7)
    book = OrderBook("AAPL")
    model: list[_ModelOrder] = []
    for n in range(2000):
        if model and rng.random() < 0.2:
            victim = rng.choice(model)
            model.remove(victim)
            assert book.cancel(victim.order_id) == victim.remaining
            continue
        side = rng.choice((BUY, SELL))
        price = rng.randint(95, 105)
        quantity = rng.randint(1, 20)
        is_market = rng.random() < 0.1
        result = book.submit(
            f"o{n}", "a", side, quantity, None if is_market else price, rest=not is_market
        )
        makers = sorted(
            (m for m in model if m.side is not side),
            key=lambda m: (m.price if side is BUY else -m.price, m.arrival),
        )
        expected: list[tuple[str, int, int]] = []
        left = quantity
        for maker in makers:
            crosses = is_market or (maker.price <= price if side is BUY else maker.price >= price)
            if not left or not crosses:
                break
            traded = min(left, maker.remaining)
            expected.append((maker.order_id, maker.price, traded))
            maker.remaining -= traded
            left -= traded
            if not maker.remaining:
                model.remove(maker)
        assert [(f.maker_order_id, f.price, f.quantity) for f in result.fills] == expected
        assert result.filled == quantity - left
        if left and not is_market:
            model.append(_ModelOrder(n, f"o{n}", side, price, left))
        assert result.resting == (0 if is_market else left)
    assert len(book) == len(model)
    assert book.depth(1000) == (_model_levels(model, BUY), _model_levels(model, SELL))
