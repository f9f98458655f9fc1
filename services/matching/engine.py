"""The matching engine: one order book per listed instrument, and its event feed.

Everything here is synchronous on purpose: a submit or cancel runs to completion
without an await, so the books, the idempotency memory and the feed sequence
change atomically as seen from the event loop, and no lock is needed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from services.errors import FieldViolation, InvalidArgument, Violations
from services.instruments import InstrumentCatalog
from services.matching.book import EMPTY_TOP, LevelView, OrderBook
from services.matching.feed import EventFeed, Quote, Subscription, Trade
from services.model import OrderStatus, TimeInForce, check_id, parse_order_spec

DEFAULT_DEPTH = 10
MAX_DEPTH = 1000
DEFAULT_FEED_QUEUE_SIZE = 100_000


@dataclass(frozen=True, slots=True)
class ExecutionReport:
    """What the engine did with one order on its (first) submission."""

    order_id: str
    symbol: str
    status: OrderStatus
    filled_quantity: int
    resting_quantity: int
    trades: tuple[Trade, ...]
    # True when this is the first report again (the id was known): nothing matched now.
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class BookSnapshot:
    """Aggregated levels of one book, best first, as of feed `sequence`."""

    symbol: str
    bids: tuple[LevelView, ...]
    asks: tuple[LevelView, ...]
    sequence: int


class MatchingEngine:
    """Price-time priority matching for every instrument of a catalog."""

    def __init__(
        self,
        catalog: InstrumentCatalog,
        *,
        engine_id: str,
        feed_queue_size: int = DEFAULT_FEED_QUEUE_SIZE,
    ) -> None:
        self.engine_id = engine_id
        self._catalog = catalog
        self._books = {symbol: OrderBook(symbol) for symbol in catalog.symbols}
        started = time.time_ns()
        # The last quote of each book (with the current sequence: the snapshot a new
        # subscriber starts from), and its top, compared against after every change.
        self._quotes = {symbol: Quote(symbol, 0, 0, 0, 0, started, 0) for symbol in self._books}
        self._tops = dict.fromkeys(self._books, EMPTY_TOP)
        self._feed = EventFeed(feed_queue_size)
        self._sequence = 0
        self._trade_count = 0
        # Idempotency memory, order id -> first report, kept for the engine's life.
        # A production engine would bound it (and the tombstones) by a trading
        # session or day window, after which order ids may not be reused.
        self._reports: dict[str, ExecutionReport] = {}
        # Ids canceled before they arrived: a late submit of one is never booked.
        self._tombstones: set[str] = set()

    @property
    def sequence(self) -> int:
        """Sequence of the last event published (0 before any)."""
        return self._sequence

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(self._books)

    def submit(
        self,
        *,
        order_id: str,
        account_id: str,
        symbol: str,
        side: int,
        type: int,
        time_in_force: int,
        quantity: int,
        price: int,
    ) -> ExecutionReport:
        """Matches an order; a GTC LIMIT rest rests, any other rest is canceled.

        Hot path. Idempotent on `order_id`: a repeat returns the first report,
        marked `replayed`.
        """
        violations = Violations()
        # parse_order_spec first: it tells its own violations from earlier ones by
        # bool(violations), so it must start from an empty collection.
        spec = parse_order_spec(
            violations,
            self._catalog,
            symbol=symbol,
            side=side,
            type=type,
            time_in_force=time_in_force,
            quantity=quantity,
            price=price,
        )
        check_id(violations, "order_id", order_id)
        check_id(violations, "account_id", account_id)
        if spec is None or violations:
            violations.raise_if_any()
            raise AssertionError("parse_order_spec refused an order without saying why")
        known = self._reports.get(order_id)
        if known is not None:
            # Said so, because a caller moving an order between engines must know
            # that this engine did not book it now (services/orders/rehoming.py).
            return replace(known, replayed=True)
        if order_id in self._tombstones:
            self._tombstones.discard(order_id)
            report = ExecutionReport(order_id, spec.symbol, OrderStatus.CANCELED, 0, 0, ())
            self._reports[order_id] = report
            return report

        book = self._books[spec.symbol]
        result = book.submit(
            order_id,
            account_id,
            spec.side,
            spec.quantity,
            None if spec.is_market else spec.price,
            rest=spec.time_in_force is TimeInForce.GTC,
        )
        trades: tuple[Trade, ...] = ()
        if result.fills:
            now = time.time_ns()
            publish = self._feed.publish
            made: list[Trade] = []
            for fill in result.fills:
                self._trade_count += 1
                self._sequence += 1
                trade = Trade(
                    f"{self.engine_id}-{self._trade_count}",
                    spec.symbol,
                    fill.price,
                    fill.quantity,
                    fill.maker_order_id,
                    order_id,
                    spec.side,
                    fill.maker_account_id,
                    account_id,
                    now,
                    self._sequence,
                )
                made.append(trade)
                publish(trade)
            trades = tuple(made)
        self._publish_quote_if_changed(book)

        if result.resting:
            status = OrderStatus.PARTIALLY_FILLED if result.filled else OrderStatus.NEW
        elif result.filled == spec.quantity:
            status = OrderStatus.FILLED
        else:
            status = OrderStatus.CANCELED
        report = ExecutionReport(
            order_id, spec.symbol, status, result.filled, result.resting, trades
        )
        self._reports[order_id] = report
        return report

    def cancel(self, symbol: str, order_id: str) -> int:
        """Removes a resting order; returns the quantity removed. 0 when it is no
        longer resting, or not yet seen: it is then remembered and never booked."""
        violations = Violations()
        self._check_symbol(violations, "symbol", symbol)
        check_id(violations, "order_id", order_id)
        violations.raise_if_any()
        known = self._reports.get(order_id)
        if known is None:
            self._tombstones.add(order_id)
            return 0
        if known.symbol != symbol:
            raise InvalidArgument(
                [
                    FieldViolation(
                        "symbol",
                        f"order {order_id!r} is for {known.symbol}, not {symbol}; "
                        f"cancel it with symbol {known.symbol}",
                    )
                ]
            )
        book = self._books[symbol]
        canceled = book.cancel(order_id)
        if canceled:
            self._publish_quote_if_changed(book)
        return canceled

    def book(self, symbol: str, depth: int = 0) -> BookSnapshot:
        """Aggregated levels per side, best first; depth 0 means 10."""
        violations = Violations()
        self._check_symbol(violations, "symbol", symbol)
        if depth == 0:
            depth = DEFAULT_DEPTH
        elif not 1 <= depth <= MAX_DEPTH:
            violations.add("depth", f"must be 1 to {MAX_DEPTH} (or 0 for {DEFAULT_DEPTH})")
        violations.raise_if_any()
        bids, asks = self._books[symbol].depth(depth)
        return BookSnapshot(symbol, tuple(bids), tuple(asks), self._sequence)

    def top(self, symbol: str) -> Quote:
        """The current quote of one symbol, stamped with the current sequence."""
        violations = Violations()
        self._check_symbol(violations, "symbol", symbol)
        violations.raise_if_any()
        return replace(self._quotes[symbol], sequence=self._sequence)

    def subscribe(self, symbols: Sequence[str] = ()) -> Subscription:
        """Follows the feed of `symbols` (empty: all): first one snapshot quote per
        symbol with the current sequence, then every later trade and quote."""
        violations = Violations()
        for i, symbol in enumerate(symbols):
            self._check_symbol(violations, f"symbols[{i}]", symbol)
        violations.raise_if_any()
        wanted = list(dict.fromkeys(symbols)) if symbols else list(self._books)
        snapshot = [replace(self._quotes[s], sequence=self._sequence) for s in wanted]
        return self._feed.subscribe(frozenset(wanted) if symbols else None, snapshot)

    @property
    def subscriber_count(self) -> int:
        return len(self._feed)

    def close(self) -> None:
        """Ends every feed subscription (the server is shutting down)."""
        self._feed.close()

    def _publish_quote_if_changed(self, book: OrderBook) -> None:
        top = book.top()
        if top == self._tops[book.symbol]:
            return
        self._tops[book.symbol] = top
        self._sequence += 1
        quote = Quote(book.symbol, *top, time.time_ns(), self._sequence)
        self._quotes[book.symbol] = quote
        self._feed.publish(quote)

    def _check_symbol(self, violations: Violations, field: str, symbol: str) -> None:
        if not symbol:
            violations.add(field, "is required")
        elif symbol not in self._books:
            violations.add(field, self._catalog.unknown_symbol_message(symbol))
