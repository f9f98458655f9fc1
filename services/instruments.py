"""The instruments the exchange lists, and the rules their prices and sizes obey.

Every service validates symbols, prices and quantities against the same catalog,
so an order that passes the edge cannot be refused downstream for a rule the edge
did not know. The catalog is built in, or read from a JSON file named by
TRADEMESH_INSTRUMENTS (a list of objects with the fields of `Instrument`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Instrument:
    """A listed instrument. Prices are minor currency units (cents) per unit."""

    symbol: str
    tick_size: int = 1
    lot_size: int = 1
    # The price band: limit prices outside it are refused, and a MARKET buy
    # reserves buying power at max_price, the worst price it may trade at.
    min_price: int = 1
    max_price: int = 10_000_000

    def __post_init__(self) -> None:
        if not (self.tick_size > 0 and self.lot_size > 0 and 0 < self.min_price < self.max_price):
            raise ValueError(f"instrument {self.symbol!r} has an impossible tick, lot or band")


DEFAULT_INSTRUMENTS: tuple[Instrument, ...] = (
    Instrument("AAPL", tick_size=1, lot_size=1, min_price=100, max_price=1_000_000),
    Instrument("MSFT", tick_size=1, lot_size=1, min_price=100, max_price=1_000_000),
    Instrument("GOOG", tick_size=1, lot_size=1, min_price=100, max_price=1_000_000),
    Instrument("AMZN", tick_size=1, lot_size=1, min_price=100, max_price=1_000_000),
    Instrument("TSLA", tick_size=5, lot_size=1, min_price=100, max_price=2_000_000),
    Instrument("ESZ6", tick_size=25, lot_size=1, min_price=100_000, max_price=2_000_000),
    Instrument("BTCUSD", tick_size=100, lot_size=10, min_price=100_000, max_price=50_000_000),
)


class InstrumentCatalog:
    """Symbol -> Instrument, with lookups that fail in words a caller can act on."""

    __slots__ = ("_by_symbol",)

    def __init__(self, instruments: Iterable[Instrument]) -> None:
        self._by_symbol = {i.symbol: i for i in instruments}
        if not self._by_symbol:
            raise ValueError("an instrument catalog needs at least one instrument")

    @classmethod
    def default(cls) -> InstrumentCatalog:
        path = os.environ.get("TRADEMESH_INSTRUMENTS")
        return cls.from_file(Path(path)) if path else cls(DEFAULT_INSTRUMENTS)

    @classmethod
    def from_file(cls, path: Path) -> InstrumentCatalog:
        return cls(Instrument(**item) for item in json.loads(path.read_text()))

    def get(self, symbol: str) -> Instrument | None:
        return self._by_symbol.get(symbol)

    def unknown_symbol_message(self, symbol: str) -> str:
        listed = ", ".join(sorted(self._by_symbol))
        return f"unknown symbol {symbol!r}; listed symbols are {listed}"

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(self._by_symbol)

    def __iter__(self) -> Iterator[Instrument]:
        return iter(self._by_symbol.values())

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._by_symbol
