"""ListOrders page tokens: an opaque cursor (the last order's created_at_ns and
order_id) tied to the filters it was issued for, so a token reused with other
filters is refused rather than silently skipping orders."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable

from services.errors import Violations
from services.model import OrderStatus


def filters_digest(account_id: str, symbol: str, statuses: Iterable[OrderStatus]) -> str:
    """A short fingerprint of a listing's filters, carried in its page tokens."""
    key = json.dumps([account_id, symbol, sorted(int(s) for s in statuses)])
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def encode_page_token(created_at_ns: int, order_id: str, filters: str) -> str:
    """The token of the page after the order (created_at_ns, order_id)."""
    raw = json.dumps([created_at_ns, order_id, filters], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_page_token(token: str, filters: str, violations: Violations) -> tuple[int, str] | None:
    """The (created_at_ns, order_id) a token continues after, or None with a
    violation saying what to send instead."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        created_at_ns, order_id, digest = json.loads(raw)
        if not (isinstance(created_at_ns, int) and isinstance(order_id, str)):
            raise ValueError("bad token fields")
    except (binascii.Error, ValueError, TypeError):
        violations.add(
            "page_token",
            "is not a token this service issued; pass next_page_token of the previous page "
            "unchanged, or leave it empty for the first page",
        )
        return None
    if digest != filters:
        violations.add(
            "page_token",
            "was issued for other filters; keep account_id, symbol and statuses unchanged "
            "while paging, or start again without a page token",
        )
        return None
    return created_at_ns, order_id
