"""The shared order vocabulary: field rules every service applies alike."""

from __future__ import annotations

import pytest

from services.errors import InvalidArgument, Violations
from services.instruments import InstrumentCatalog
from services.model import OrderType, Side, TimeInForce, check_id, parse_order_spec

CATALOG = InstrumentCatalog.default()


def parse(violations: Violations | None = None, **fields):
    order = {"symbol": "AAPL", "side": 1, "type": 1, "time_in_force": 0, "quantity": 10}
    order["price"] = 18_000
    order.update(fields)
    violations = violations if violations is not None else Violations()
    return parse_order_spec(violations, CATALOG, **order), violations


def test_unspecified_time_in_force_resolves_by_type() -> None:
    limit, _ = parse()
    market, _ = parse(type=2, price=0)
    assert limit is not None and limit.time_in_force is TimeInForce.GTC
    assert market is not None and market.time_in_force is TimeInForce.IOC
    assert (market.side, market.type) == (Side.BUY, OrderType.MARKET)


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"symbol": "NOPE"}, "symbol", "listed symbols are"),
        ({"symbol": ""}, "symbol", "is required"),
        ({"side": 0}, "side", "SIDE_BUY or SIDE_SELL"),
        ({"type": 7}, "type", "ORDER_TYPE_LIMIT"),
        ({"time_in_force": 9}, "time_in_force", "GTC"),
        ({"type": 2, "price": 0, "time_in_force": 1}, "time_in_force", "cannot rest"),
        ({"quantity": 0}, "quantity", "must be positive"),
        ({"symbol": "BTCUSD", "quantity": 15, "price": 200_000}, "quantity", "lot size 10"),
        ({"symbol": "TSLA", "price": 20_003}, "price", "tick size 5"),
        ({"price": 50}, "price", "price band"),
        ({"price": -1}, "price", "must be positive"),
        ({"type": 2, "price": 100}, "price", "must be 0 for a MARKET order"),
    ],
)
def test_each_rule_names_its_field(fields: dict, field: str, words: str) -> None:
    spec, violations = parse(**fields)
    assert spec is None
    with pytest.raises(InvalidArgument) as caught:
        violations.raise_if_any()
    assert [v.field for v in caught.value.violations] == [field]
    assert words in caught.value.violations[0].description


def test_earlier_violations_do_not_hide_new_ones() -> None:
    violations = Violations()
    check_id(violations, "account_id", "")
    spec, _ = parse(violations, side=0, prefix="orders[1].")
    assert spec is None
    assert [v.field for v in violations] == ["account_id", "orders[1].side"]


def test_ids_have_one_shape() -> None:
    violations = Violations()
    check_id(violations, "a", "ok-id_1.2")
    check_id(violations, "b", "has space")
    check_id(violations, "c", "x" * 65)
    assert [v.field for v in violations] == ["b", "c"]
