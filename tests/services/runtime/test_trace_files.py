"""The JSON-lines span exporter, and the tree `make observe` prints from its files."""

from __future__ import annotations

import json
from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.trace import SpanKind, StatusCode

from services.runtime.telemetry.trace_files import (
    JsonLinesSpanExporter,
    read_spans,
    render_tree,
)
from services.runtime.telemetry.tracing import build_tracer_provider


def provider_to(path: Path, service: str) -> TracerProvider:
    provider = build_tracer_provider(service, f"{service}-0", sampler=ALWAYS_ON)
    provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(path)))
    return provider


def test_each_finished_span_is_one_json_line_with_its_links(tmp_path: Path) -> None:
    path = tmp_path / "traces" / "orders-0.jsonl"  # the directory is made
    provider = provider_to(path, "orders")
    tracer = provider.get_tracer(__name__)
    with tracer.start_as_current_span("PlaceOrder", kind=SpanKind.SERVER) as parent:
        parent.add_event("saga.reserved", {"order_id": "o-1"})
        with tracer.start_as_current_span("mesh risk", attributes={"trademesh.attempts": 2}):
            pass
        parent.set_status(StatusCode.ERROR, "risk unreachable")
    provider.shutdown()

    child, root = (json.loads(line) for line in path.read_text().splitlines())
    context = parent.get_span_context()
    assert root["trace_id"] == child["trace_id"] == f"{context.trace_id:032x}"
    assert root["span_id"] == f"{context.span_id:016x}" == child["parent_span_id"]
    assert root["parent_span_id"] is None
    assert (root["name"], root["kind"], root["service"]) == ("PlaceOrder", "SERVER", "orders")
    assert (root["status_code"], root["status_description"]) == ("ERROR", "risk unreachable")
    assert root["events"][0]["name"] == "saga.reserved"
    assert root["events"][0]["attributes"] == {"order_id": "o-1"}
    assert child["attributes"] == {"trademesh.attempts": 2}
    assert child["kind"] == "INTERNAL" and child["start_ns"] <= child["end_ns"]


def test_processes_appending_to_one_file_and_a_tree_across_files(tmp_path: Path) -> None:
    client = provider_to(tmp_path / "client.jsonl", "client")
    orders = provider_to(tmp_path / "shared.jsonl", "orders")
    risk = provider_to(tmp_path / "shared.jsonl", "risk")  # a second writer, same file
    with (
        client.get_tracer(__name__).start_as_current_span("place") as root,
        orders.get_tracer(__name__).start_as_current_span("PlaceOrder"),
    ):
        with risk.get_tracer(__name__).start_as_current_span("Reserve") as reserve:
            reserve.set_attribute("rpc.grpc.status_code", 9)
        with risk.get_tracer(__name__).start_as_current_span("ApplyFill"):
            pass
    with client.get_tracer(__name__).start_as_current_span("another trace"):
        pass
    for provider in (client, orders, risk):
        provider.shutdown()

    trace_id = f"{root.get_span_context().trace_id:032x}"
    spans = read_spans(sorted(tmp_path.glob("*.jsonl")), trace_id)
    assert [s["name"] for s in spans] == ["place", "PlaceOrder", "Reserve", "ApplyFill"]
    tree = render_tree(spans)
    assert [line.split()[0:2] for line in tree] == [
        ["place", "client"],
        ["└─", "PlaceOrder"],
        ["├─", "Reserve"],
        ["└─", "ApplyFill"],
    ]
    assert tree[2].startswith("   ├─ Reserve") and "FAILED_PRECONDITION" in tree[2]
    assert tree[3].rstrip().endswith("OK")
    assert len(read_spans(sorted(tmp_path.glob("*.jsonl")))) == 5
