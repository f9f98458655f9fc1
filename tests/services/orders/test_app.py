"""OrderService wiring: the periodic trim of the order event log, and its settings."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from pydantic import ValidationError

from services.model import OrderSpec, OrderType, Side, TimeInForce
from services.orders import app
from services.orders.app import OrderSettings, trim_event_log
from services.orders.events import OrderEvent, OrderEventType
from services.orders.lifecycle import Order
from services.orders.store import OrderStore

SPEC = OrderSpec("AAPL", Side.BUY, OrderType.LIMIT, TimeInForce.GTC, 10, 10_000)


async def test_the_trim_keeps_the_newest_events_chunk_by_chunk(
    store: OrderStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app, "_TRIM_CHUNK", 3)
    pending = Order.pending(
        order_id="o-1", account_id="a", client_order_id="c", spec=SPEC, now_ns=1
    )
    with store.transaction():
        store.append_events([OrderEvent(OrderEventType.ACCEPTED, pending.accept(2))] * 20, now_ns=1)

    trim = asyncio.create_task(trim_event_log(store, keep=5, every_seconds=60))
    for _ in range(10):  # a few loop turns: one chunk per turn, then the long pause
        await asyncio.sleep(0)
    trim.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await trim
    assert [seq for seq, _ in store.events_after(0, 100)] == list(range(16, 21))


def test_the_retention_is_a_setting_of_at_least_one_event() -> None:
    assert OrderSettings().event_log_retention == 1_000_000
    with pytest.raises(ValidationError, match="event_log_retention"):
        OrderSettings(event_log_retention=0)
