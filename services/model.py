"""The trading vocabulary shared by every domain module, free of any transport.

The enum values equal the protobuf enum values of trading.v1, so adapters convert
with a plain int() and no lookup table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum

from services.errors import Violations
from services.instruments import Instrument, InstrumentCatalog


class Side(IntEnum):
    BUY = 1
    SELL = 2


class OrderType(IntEnum):
    LIMIT = 1
    MARKET = 2


class TimeInForce(IntEnum):
    GTC = 1
    IOC = 2


class OrderStatus(IntEnum):
    NEW = 1
    PARTIALLY_FILLED = 2
    FILLED = 3
    CANCELED = 4
    REJECTED = 5

    @property
    def is_final(self) -> bool:
        return self in _FINAL_STATUSES


_FINAL_STATUSES = frozenset({OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED})

_ID_PATTERN = re.compile(r"[A-Za-z0-9._\-]{1,64}")
ID_RULE = "must be 1 to 64 letters, digits, '.', '_' or '-'"


def check_id(violations: Violations, field: str, value: str) -> None:
    """Account ids, client order ids and reservation ids share one shape."""
    if not value:
        violations.add(field, "is required")
    elif not _ID_PATTERN.fullmatch(value):
        violations.add(field, ID_RULE)


@dataclass(frozen=True, slots=True)
class OrderSpec:
    """What an order asks for, validated against the instrument's rules."""

    symbol: str
    side: Side
    type: OrderType
    time_in_force: TimeInForce
    quantity: int
    price: int  # 0 for MARKET orders

    @property
    def is_market(self) -> bool:
        return self.type is OrderType.MARKET


def parse_order_spec(
    violations: Violations,
    catalog: InstrumentCatalog,
    *,
    symbol: str,
    side: int,
    type: int,
    time_in_force: int,
    quantity: int,
    price: int,
    prefix: str = "",
) -> OrderSpec | None:
    """Checks the order fields every service shares, adding one violation per
    problem (field names get `prefix`, e.g. "orders[3]."). Returns the spec, with
    an unspecified time in force resolved, or None if anything was wrong."""
    found_before = len(violations)  # the caller may have collected some already
    instrument: Instrument | None = None
    if not symbol:
        violations.add(prefix + "symbol", "is required")
    else:
        instrument = catalog.get(symbol)
        if instrument is None:
            violations.add(prefix + "symbol", catalog.unknown_symbol_message(symbol))
    if side not in (Side.BUY, Side.SELL):
        violations.add(prefix + "side", "must be SIDE_BUY or SIDE_SELL")
    order_type: OrderType | None = None
    if type in (OrderType.LIMIT, OrderType.MARKET):
        order_type = OrderType(type)
    else:
        violations.add(prefix + "type", "must be ORDER_TYPE_LIMIT or ORDER_TYPE_MARKET")
    tif: TimeInForce | None = None
    if time_in_force == 0:
        if order_type is not None:
            tif = TimeInForce.IOC if order_type is OrderType.MARKET else TimeInForce.GTC
    elif time_in_force in (TimeInForce.GTC, TimeInForce.IOC):
        tif = TimeInForce(time_in_force)
        if order_type is OrderType.MARKET and tif is TimeInForce.GTC:
            violations.add(prefix + "time_in_force", "a MARKET order cannot rest: use IOC")
    else:
        violations.add(prefix + "time_in_force", "must be TIME_IN_FORCE_GTC or TIME_IN_FORCE_IOC")
    if quantity <= 0:
        violations.add(prefix + "quantity", f"must be positive, got {quantity}")
    elif instrument is not None and quantity % instrument.lot_size:
        violations.add(
            prefix + "quantity",
            f"must be a multiple of the lot size {instrument.lot_size} for {symbol}",
        )
    if order_type is OrderType.MARKET:
        if price != 0:
            violations.add(prefix + "price", "must be 0 for a MARKET order (it takes any price)")
    elif order_type is OrderType.LIMIT:
        if price <= 0:
            violations.add(prefix + "price", f"must be positive for a LIMIT order, got {price}")
        elif instrument is not None:
            if price % instrument.tick_size:
                violations.add(
                    prefix + "price",
                    f"must be a multiple of the tick size {instrument.tick_size} for {symbol}",
                )
            elif not instrument.min_price <= price <= instrument.max_price:
                violations.add(
                    prefix + "price",
                    f"must be within the price band {instrument.min_price}.."
                    f"{instrument.max_price} for {symbol}",
                )
    if len(violations) != found_before or instrument is None or order_type is None or tif is None:
        return None
    return OrderSpec(symbol, Side(side), order_type, tif, quantity, price)
