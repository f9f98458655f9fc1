"""QuoteBoard: aggregation of the matching feed into one quote per symbol."""

from __future__ import annotations

import pytest

from services.errors import FieldViolation, InvalidArgument
from services.instruments import Instrument, InstrumentCatalog
from services.marketdata.quotes import Quote, QuoteBoard

CATALOG = InstrumentCatalog([Instrument("AAPL"), Instrument("MSFT"), Instrument("TSLA")])


@pytest.fixture
def board() -> QuoteBoard:
    return QuoteBoard(CATALOG)


def test_every_listed_symbol_starts_with_an_empty_quote(board: QuoteBoard) -> None:
    assert board.symbols == ("AAPL", "MSFT", "TSLA")
    for symbol in board.symbols:
        assert board.quote(symbol) == Quote(symbol)


def test_book_top_sets_bid_ask_time_and_sequence(board: QuoteBoard) -> None:
    quote = board.apply_book_top("AAPL", 100, 5, 102, 7, timestamp_ns=1_000, sequence=3)
    assert quote == Quote("AAPL", 100, 5, 102, 7, timestamp_ns=1_000, sequence=3)
    assert board.quote("AAPL") is quote
    assert board.quote("MSFT") == Quote("MSFT")


def test_trades_set_last_and_add_to_volume_and_count(board: QuoteBoard) -> None:
    board.apply_book_top("AAPL", 100, 5, 102, 7, timestamp_ns=1, sequence=1)
    board.apply_trade("AAPL", 102, 3, timestamp_ns=2, sequence=2)
    quote = board.apply_trade("AAPL", 101, 4, timestamp_ns=3, sequence=3)
    assert quote == Quote(
        "AAPL",
        bid_price=100,
        bid_quantity=5,
        ask_price=102,
        ask_quantity=7,
        last_price=101,
        last_quantity=4,
        volume=7,
        trade_count=2,
        timestamp_ns=3,
        sequence=3,
    )
    # A later book-top change keeps the trade statistics.
    quote = board.apply_book_top("AAPL", 100, 5, 103, 1, timestamp_ns=4, sequence=4)
    assert quote is not None
    assert (quote.ask_price, quote.last_price, quote.volume, quote.trade_count) == (103, 101, 7, 2)


def test_events_at_or_below_the_last_sequence_are_replays(board: QuoteBoard) -> None:
    board.apply_book_top("AAPL", 100, 5, 102, 7, timestamp_ns=1, sequence=5)
    board.apply_trade("AAPL", 102, 3, timestamp_ns=2, sequence=6)
    before = board.quote("AAPL")
    assert board.apply_book_top("AAPL", 90, 1, 95, 1, timestamp_ns=9, sequence=5) is None
    assert board.apply_book_top("AAPL", 90, 1, 95, 1, timestamp_ns=9, sequence=4) is None
    assert board.apply_trade("AAPL", 102, 3, timestamp_ns=2, sequence=6) is None
    assert board.apply_trade("AAPL", 102, 3, timestamp_ns=2, sequence=1) is None
    assert board.quote("AAPL") is before
    assert before.volume == 3 and before.trade_count == 1


def test_sequences_are_kept_per_symbol(board: QuoteBoard) -> None:
    board.apply_book_top("AAPL", 100, 5, 102, 7, timestamp_ns=1, sequence=10)
    # Another symbol's lower sequence is not a replay of AAPL's event.
    assert board.apply_book_top("MSFT", 50, 1, 51, 1, timestamp_ns=1, sequence=4) is not None


def test_a_quote_may_carry_the_sequence_of_the_trade_that_moved_it(board: QuoteBoard) -> None:
    assert board.apply_trade("AAPL", 102, 3, timestamp_ns=1, sequence=7) is not None
    quote = board.apply_book_top("AAPL", 100, 5, 102, 4, timestamp_ns=1, sequence=7)
    assert quote is not None and quote.ask_quantity == 4 and quote.volume == 3


def test_snapshot_with_the_same_sequence_is_a_replay(board: QuoteBoard) -> None:
    board.apply_book_top("AAPL", 100, 5, 102, 7, timestamp_ns=1, sequence=8)
    assert board.apply_snapshot(Quote("AAPL", 100, 5, 102, 7, sequence=8)) is None


def test_newer_snapshot_takes_the_book_top_and_keeps_aggregated_trades(board: QuoteBoard) -> None:
    board.apply_trade("AAPL", 102, 3, timestamp_ns=1, sequence=2)
    board.apply_book_top("AAPL", 100, 5, 102, 4, timestamp_ns=1, sequence=3)
    # The engine leaves statistics at 0 in its quotes: ours stay.
    quote = board.apply_snapshot(Quote("AAPL", 99, 1, 104, 2, timestamp_ns=20, sequence=30))
    assert quote == Quote("AAPL", 99, 1, 104, 2, 102, 3, 3, 1, timestamp_ns=20, sequence=30)
    assert board.apply_book_top("AAPL", 1, 1, 2, 2, timestamp_ns=1, sequence=30) is None


def test_newer_snapshot_with_an_unmoved_book_changes_nothing(board: QuoteBoard) -> None:
    before = board.apply_book_top("AAPL", 100, 5, 102, 7, timestamp_ns=1, sequence=3)
    assert board.apply_snapshot(Quote("AAPL", 100, 5, 102, 7, timestamp_ns=1, sequence=9)) is None
    assert board.quote("AAPL") is before
    # ...but its sequence now marks what was applied.
    assert board.apply_book_top("AAPL", 1, 1, 2, 2, timestamp_ns=1, sequence=9) is None


def test_snapshot_counting_more_trades_replaces_our_statistics(board: QuoteBoard) -> None:
    board.apply_trade("AAPL", 102, 3, timestamp_ns=1, sequence=2)
    snapshot = Quote("AAPL", 100, 5, 102, 7, 101, 2, 10, 4, timestamp_ns=9, sequence=9)
    assert board.apply_snapshot(snapshot) == snapshot
    # Trades the snapshot already counted are not counted again.
    assert board.apply_trade("AAPL", 101, 2, timestamp_ns=9, sequence=9) is None
    after = board.apply_trade("AAPL", 103, 1, timestamp_ns=10, sequence=10)
    assert after is not None and (after.volume, after.trade_count) == (11, 5)


def test_older_snapshot_means_the_engine_restarted(board: QuoteBoard) -> None:
    board.apply_trade("AAPL", 102, 3, timestamp_ns=1, sequence=40)
    board.apply_book_top("AAPL", 100, 5, 102, 4, timestamp_ns=1, sequence=41)
    fresh = Quote("AAPL", timestamp_ns=50, sequence=0)
    assert board.apply_snapshot(fresh) == fresh
    # The new engine's feed counts again from its own sequences.
    quote = board.apply_trade("AAPL", 200, 1, timestamp_ns=51, sequence=1)
    assert quote is not None and (quote.volume, quote.trade_count, quote.last_price) == (1, 1, 200)
    assert board.apply_book_top("AAPL", 199, 1, 0, 0, timestamp_ns=52, sequence=2) is not None


def test_events_of_unlisted_symbols_are_ignored(board: QuoteBoard) -> None:
    assert board.apply_book_top("ZZZZ", 1, 1, 2, 2, timestamp_ns=1, sequence=1) is None
    assert board.apply_trade("ZZZZ", 1, 1, timestamp_ns=1, sequence=2) is None
    assert board.apply_snapshot(Quote("ZZZZ", sequence=3)) is None


def test_unknown_symbol_names_the_listed_ones(board: QuoteBoard) -> None:
    with pytest.raises(InvalidArgument) as caught:
        board.quote("NOPE")
    assert caught.value.violations == (
        FieldViolation("symbol", "unknown symbol 'NOPE'; listed symbols are AAPL, MSFT, TSLA"),
    )
    with pytest.raises(InvalidArgument) as caught:
        board.quote("")
    assert caught.value.violations == (FieldViolation("symbol", "is required"),)


def test_resolve_symbols(board: QuoteBoard) -> None:
    assert board.resolve_symbols([]) == ("AAPL", "MSFT", "TSLA")
    assert board.resolve_symbols(["TSLA", "AAPL", "TSLA"]) == ("TSLA", "AAPL")
    with pytest.raises(InvalidArgument) as caught:
        board.resolve_symbols(["AAPL", "NOPE", ""])
    assert caught.value.violations == (
        FieldViolation("symbols[1]", CATALOG.unknown_symbol_message("NOPE")),
        FieldViolation("symbols[2]", "must not be empty"),
    )
