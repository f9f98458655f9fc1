"""Structured logs: JSON lines carry the current trace, text stays readable."""

from __future__ import annotations

import json
import logging
import sys

from opentelemetry.sdk.trace import TracerProvider

from services.runtime.telemetry.logs import JsonFormatter, TextFormatter, configure_logging


def record(message: str = "order %s placed", *args: object, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("services.orders", logging.INFO, __file__, 1, message, args, None)
    made.__dict__.update(extra)
    return made


def test_json_line_outside_a_span_has_no_trace_ids() -> None:
    line = json.loads(JsonFormatter("orders").format(record("order %s placed", "o-1")))
    assert line["message"] == "order o-1 placed"
    assert (line["level"], line["logger"], line["service"]) == ("INFO", "services.orders", "orders")
    assert isinstance(line["pid"], int) and line["time"].endswith("Z")
    assert "trace_id" not in line and "span_id" not in line


def test_json_line_inside_a_span_names_its_trace_and_span() -> None:
    tracer = TracerProvider().get_tracer(__name__)  # local: nothing global is set
    with tracer.start_as_current_span("PlaceOrder") as span:
        line = json.loads(JsonFormatter("orders").format(record()))
    context = span.get_span_context()
    assert line["trace_id"] == f"{context.trace_id:032x}"
    assert line["span_id"] == f"{context.span_id:016x}"


def test_json_line_keeps_extra_fields_and_the_traceback() -> None:
    try:
        raise KeyError("boom")
    except KeyError:
        failed = record("failed", code="INVALID_ARGUMENT", duration_ms=1.5)
        failed.exc_info = sys.exc_info()
    line = json.loads(JsonFormatter().format(failed))
    assert (line["code"], line["duration_ms"]) == ("INVALID_ARGUMENT", 1.5)
    assert "KeyError: 'boom'" in line["exception"]
    assert "args" not in line and "msg" not in line  # record internals stay out


def test_text_line_is_readable_and_ends_with_the_trace() -> None:
    formatter = TextFormatter()
    plain = formatter.format(record("order %s placed", "o-1"))
    assert "INFO services.orders [pid " in plain and plain.endswith("order o-1 placed")
    tracer = TracerProvider().get_tracer(__name__)
    with tracer.start_as_current_span("PlaceOrder") as span:
        traced = formatter.format(record("order %s placed", "o-1"))
    assert traced.endswith(f"order o-1 placed trace={span.get_span_context().trace_id:032x}")


def test_configure_logging_installs_one_handler_in_the_chosen_format() -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    root.handlers = []  # basicConfig(force=True) closes what it replaces: not pytest's
    try:
        configure_logging("debug", "json", "risk")
        assert root.level == logging.DEBUG
        (handler,) = root.handlers
        assert isinstance(handler.formatter, JsonFormatter)
        assert handler.formatter.service == "risk"
        configure_logging("INFO", "text")
        assert isinstance(root.handlers[0].formatter, TextFormatter)
    finally:
        root.handlers[:], root.level = saved
