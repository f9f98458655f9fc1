"""The PlaceOrder saga's steps as events on the current span, so a trace shows
what the saga decided between its downstream calls (reserved, submitted, booked,
unwinding, rejected, settled) and not only the calls themselves.

The current span is the server's PlaceOrder span when the call is sampled (the
saga's task copies the caller's context); recovery and the outbox loop run
outside any span. Unsampled, a step costs one context read. Only the OpenTelemetry
API is used here: no SDK, exporter or transport.
"""

from __future__ import annotations

from opentelemetry.trace import get_current_span

AttributeValue = str | int | float | bool


def saga_step(name: str, **attributes: AttributeValue) -> None:
    """An event `saga.<name>` on the current span, if it records."""
    span = get_current_span()
    if span.is_recording():
        span.add_event(f"saga.{name}", attributes)


def saga_order(order_id: str, account_id: str, symbol: str) -> None:
    """Names the order on the current span (searchable in a trace backend)."""
    span = get_current_span()
    if span.is_recording():
        span.set_attributes(
            {
                "trademesh.order_id": order_id,
                "trademesh.account_id": account_id,
                "trademesh.symbol": symbol,
            }
        )
