"""The quote board: one current quote per listed instrument, built from the
matching engine's event feed.

Book-top events set the bid and ask; trades set the last price and add to volume
and trade count. The feed is lossless and ordered while connected, but after a
reconnect the engine starts again with its current quote of every symbol, so the
board ignores what it has already applied: each event carries the engine's feed
sequence, strictly increasing per engine, and an event at or below the last
sequence applied for its symbol is a replay. (Each symbol trades on exactly one
engine, so per-symbol sequences are per-engine sequences; keeping them per symbol
also accepts the start-of-stream quotes, which come in symbol order, not in
sequence order.) Book-top and trade sequences are tracked apart, so the board
works whether the engine gives a quote its own sequence or that of the trade that
moved it.

Pure Python: no transport. `apply_*` run once per feed event, a hot path.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from services.errors import FieldViolation, InvalidArgument, Violations
from services.instruments import InstrumentCatalog

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Quote:
    """Top of book plus trading statistics of one instrument, as of `sequence`.

    Immutable: a change makes a new Quote, so one that was handed to subscribers
    never changes under them. Prices 0 mean "no bid / no ask / no trade yet".
    """

    symbol: str
    bid_price: int = 0
    bid_quantity: int = 0
    ask_price: int = 0
    ask_quantity: int = 0
    last_price: int = 0
    last_quantity: int = 0
    volume: int = 0
    trade_count: int = 0
    timestamp_ns: int = 0
    sequence: int = 0


class _Line:
    """The board's mutable row for one symbol: its quote and what was applied."""

    __slots__ = ("book_sequence", "quote", "trade_sequence")

    def __init__(self, symbol: str) -> None:
        self.quote = Quote(symbol)
        self.book_sequence = 0  # last book-top (or snapshot) event applied
        self.trade_sequence = 0  # last trade applied


class QuoteBoard:
    """Current quotes of every listed symbol; empty until the first event."""

    __slots__ = ("_catalog", "_lines", "_unlisted_seen")

    def __init__(self, catalog: InstrumentCatalog) -> None:
        self._catalog = catalog
        self._lines = {symbol: _Line(symbol) for symbol in catalog.symbols}
        self._unlisted_seen: set[str] = set()

    @property
    def symbols(self) -> tuple[str, ...]:
        """Every listed symbol, in catalog order."""
        return tuple(self._lines)

    # -- reads (per call) ------------------------------------------------------

    def quote(self, symbol: str) -> Quote:
        """The current quote of `symbol`; InvalidArgument if it is not listed."""
        line = self._lines.get(symbol)
        if line is None:
            if not symbol:
                raise InvalidArgument([FieldViolation("symbol", "is required")])
            raise InvalidArgument(
                [FieldViolation("symbol", self._catalog.unknown_symbol_message(symbol))]
            )
        return line.quote

    def resolve_symbols(self, symbols: Iterable[str], field: str = "symbols") -> tuple[str, ...]:
        """The symbols a subscription follows: the requested ones without
        duplicates, in request order, or every listed symbol if none is named.
        Every unlisted one is reported at once, by its index in the request."""
        requested = list(symbols)
        if not requested:
            return self.symbols
        violations = Violations()
        for index, symbol in enumerate(requested):
            if symbol not in self._lines:
                description = (
                    "must not be empty"
                    if not symbol
                    else self._catalog.unknown_symbol_message(symbol)
                )
                violations.add(f"{field}[{index}]", description)
        violations.raise_if_any()
        return tuple(dict.fromkeys(requested))

    # -- writes (per feed event, hot path) -------------------------------------

    def apply_book_top(
        self,
        symbol: str,
        bid_price: int,
        bid_quantity: int,
        ask_price: int,
        ask_quantity: int,
        timestamp_ns: int,
        sequence: int,
    ) -> Quote | None:
        """A live top-of-book change. Returns the new quote, or None when the
        event was a replay (or for an unlisted symbol) and nothing changed."""
        line = self._line(symbol)
        if line is None or sequence <= line.book_sequence:
            return None
        line.book_sequence = sequence
        old = line.quote
        quote = line.quote = Quote(
            symbol,
            bid_price,
            bid_quantity,
            ask_price,
            ask_quantity,
            old.last_price,
            old.last_quantity,
            old.volume,
            old.trade_count,
            timestamp_ns,
            sequence,
        )
        return quote

    def apply_trade(
        self, symbol: str, price: int, quantity: int, timestamp_ns: int, sequence: int
    ) -> Quote | None:
        """A trade: last price and quantity, volume and trade count. Returns the
        new quote, or None when the trade was already counted."""
        line = self._line(symbol)
        if line is None or sequence <= line.trade_sequence:
            return None
        line.trade_sequence = sequence
        old = line.quote
        quote = line.quote = Quote(
            symbol,
            old.bid_price,
            old.bid_quantity,
            old.ask_price,
            old.ask_quantity,
            price,
            quantity,
            old.volume + quantity,
            old.trade_count + 1,
            timestamp_ns,
            sequence,
        )
        return quote

    def apply_snapshot(self, snapshot: Quote) -> Quote | None:
        """The engine's current quote of a symbol, sent first on every (re)connected
        feed. Returns the new quote, or None when nothing changed.

        - Same sequence as the last book top applied: a replay, ignored.
        - Newer: the book may have moved while the feed was down, so its top is
          taken. Trades may have been missed too: statistics counting more trades
          than ours replace ours (an engine that leaves them 0 keeps ours).
        - Older: an engine's current quote is never older than one it already
          sent, so the engine restarted and its feed began again; its quote
          replaces ours entirely (statistics count since the engine started).
        """
        line = self._line(snapshot.symbol)
        if line is None or snapshot.sequence == line.book_sequence:
            return None
        old = line.quote
        if snapshot.sequence < line.book_sequence:
            _LOGGER.warning(
                "matching engine restarted: %s feed sequence went back from %d to %d",
                snapshot.symbol,
                line.book_sequence,
                snapshot.sequence,
            )
            line.trade_sequence = snapshot.sequence
            quote = snapshot
        elif snapshot.trade_count > old.trade_count:
            # The engine's statistics include every trade up to the snapshot.
            line.trade_sequence = max(line.trade_sequence, snapshot.sequence)
            quote = snapshot
        elif (
            snapshot.bid_price == old.bid_price
            and snapshot.bid_quantity == old.bid_quantity
            and snapshot.ask_price == old.ask_price
            and snapshot.ask_quantity == old.ask_quantity
        ):
            line.book_sequence = snapshot.sequence  # the book did not move
            return None
        else:
            quote = Quote(
                snapshot.symbol,
                snapshot.bid_price,
                snapshot.bid_quantity,
                snapshot.ask_price,
                snapshot.ask_quantity,
                old.last_price,
                old.last_quantity,
                old.volume,
                old.trade_count,
                snapshot.timestamp_ns,
                snapshot.sequence,
            )
        line.book_sequence = snapshot.sequence
        line.quote = quote
        return quote

    def _line(self, symbol: str) -> _Line | None:
        line = self._lines.get(symbol)
        if line is None and symbol not in self._unlisted_seen:
            # The engine lists a symbol this service does not: the two run with
            # different catalogs (TRADEMESH_INSTRUMENTS). Say so once per symbol.
            self._unlisted_seen.add(symbol)
            _LOGGER.warning("ignoring feed events for unlisted symbol %r", symbol)
        return line
