"""ListOrders page tokens: round trip, and refusal of foreign or mismatched tokens."""

from __future__ import annotations

from services.errors import Violations
from services.model import OrderStatus
from services.orders.paging import decode_page_token, encode_page_token, filters_digest


def test_a_token_round_trips_for_the_same_filters() -> None:
    filters = filters_digest("alice", "AAPL", [OrderStatus.NEW, OrderStatus.FILLED])
    assert filters == filters_digest("alice", "AAPL", [OrderStatus.FILLED, OrderStatus.NEW])
    token = encode_page_token(1_234, "o-9", filters)
    violations = Violations()
    assert decode_page_token(token, filters, violations) == (1_234, "o-9")
    assert not violations


def test_a_foreign_or_mismatched_token_is_a_violation() -> None:
    filters = filters_digest("alice", "", [])
    token = encode_page_token(1_234, "o-9", filters)
    for bad, other_filters in (("not-a-token", filters), (token, filters_digest("bob", "", []))):
        violations = Violations()
        assert decode_page_token(bad, other_filters, violations) is None
        assert [v.field for v in violations] == ["page_token"], bad
