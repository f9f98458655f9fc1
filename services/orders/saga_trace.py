"""The PlaceOrder saga's steps as events on the current span, so a trace shows
what the saga decided between its downstream calls (reserved, submitted, booked,
unwinding, rejected, settled) and not only the calls themselves.

The current span is the server's PlaceOrder span when the call is sampled (the
saga's task copies the caller's context); recovery and the outbox loop run
outside any span. Unsampled, a step costs one context read. Only the OpenTelemetry
API is used here: no SDK, exporter or transport.

The risk settlement a placement starts after answering runs in its own span
("settle risk", a child of the PlaceOrder span, which has usually ended by then):
its calls and steps need a recording parent, and the answer's span must not wait.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.trace import get_current_span

_TRACER = trace.get_tracer(__name__)
SETTLE_SPAN = "settle risk"

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


@contextmanager
def settlement_span() -> Iterator[None]:
    """The span of a settlement after the answer, when the placement's trace is
    sampled (its own span may have ended: is_recording() would say no)."""
    if not get_current_span().get_span_context().trace_flags.sampled:
        yield
        return
    with _TRACER.start_as_current_span(SETTLE_SPAN, kind=trace.SpanKind.INTERNAL):
        yield
