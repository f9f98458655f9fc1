"""One order traced across real processes: the test is the client, each service
writes its spans to a file, and the pieces must make one trace with the right
parents and statuses; a failed call leaves one JSON log line with its trace id."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.instrumentation.grpc import aio_client_interceptors
from opentelemetry.sdk.trace.sampling import ALWAYS_ON

from services.launcher import SERVICE_ORDER, LocalMesh
from services.runtime.telemetry.trace_files import JsonLinesSpanExporter, read_spans
from services.runtime.telemetry.tracing import build_tracer_provider, is_traced
from trading.v1 import common_pb2, orders_pb2, orders_pb2_grpc

pytestmark = pytest.mark.e2e
Span = dict[str, Any]


@pytest.fixture(scope="module")
def traced_mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMesh]:
    """One process per service (plaintext), each writing trace_dir/<service>-0.jsonl."""
    state_dir = tmp_path_factory.mktemp("traced")
    mesh = LocalMesh.on_free_ports(
        state_dir, instances=dict.fromkeys(SERVICE_ORDER, 1), trace_dir=state_dir / "traces"
    )
    with mesh.running():
        yield mesh


def order(account: str, key: str, side: int, quantity: int = 10) -> orders_pb2.PlaceOrderRequest:
    return orders_pb2.PlaceOrderRequest(
        account_id=account,
        client_order_id=key,
        symbol="AAPL",
        side=side,
        type=common_pb2.ORDER_TYPE_LIMIT,
        quantity=quantity,
        price=19_000,
    )


@pytest.fixture(scope="module")
def traced_calls(traced_mesh: LocalMesh) -> dict[str, Any]:
    """A resting offer, a buy through it and an invalid order, from a client with
    its own tracer provider (nothing global); then the mesh stops, which makes
    every process export its last spans."""
    trace_dir = traced_mesh.trace_dir
    assert trace_dir is not None
    found = asyncio.run(place_orders(traced_mesh, trace_dir))
    codes = traced_mesh.stop()
    assert set(codes.values()) == {0}, f"unclean exit; logs in {traced_mesh.state_dir / 'logs'}"
    files = sorted(trace_dir.glob("*.jsonl"))
    return {
        **found,
        "buy": read_spans(files, found["buy"]),
        "invalid": read_spans(files, found["invalid"]),
        "all": read_spans(files),
        "orders_log": traced_mesh.state_dir / "logs" / "orders-0.log",
    }


async def place_orders(traced_mesh: LocalMesh, trace_dir: Path) -> dict[str, Any]:
    provider = build_tracer_provider(
        "test-client",
        "test",
        sampler=ALWAYS_ON,
        exporter=JsonLinesSpanExporter(trace_dir / "client.jsonl"),
    )
    tracer = provider.get_tracer(__name__)
    interceptors = aio_client_interceptors(tracer_provider=provider, filter_=is_traced)
    address = traced_mesh.addresses()["orders"]
    async with grpc.aio.insecure_channel(address, interceptors=interceptors) as channel:
        orders = orders_pb2_grpc.OrderServiceStub(channel)
        await orders.PlaceOrder(order("bob", "ask-1", common_pb2.SIDE_SELL))
        with tracer.start_as_current_span("buy") as buy:
            bought = await orders.PlaceOrder(order("alice", "buy-1", common_pb2.SIDE_BUY))
        with (
            tracer.start_as_current_span("invalid") as invalid,
            pytest.raises(grpc.aio.AioRpcError) as refused,
        ):
            await orders.PlaceOrder(order("alice", "bad-1", common_pb2.SIDE_BUY, 0))
    provider.shutdown()
    return {
        "bought": bought,
        "refused": refused.value,
        "buy": f"{buy.get_span_context().trace_id:032x}",
        "invalid": f"{invalid.get_span_context().trace_id:032x}",
    }


def only(spans: list[Span], name: str, service: str, kind: str, parent: Span | None) -> Span:
    found = [
        s
        for s in spans
        if (s["name"], s["service"], s["kind"]) == (name, service, kind)
        and (parent is None or s["parent_span_id"] == parent["span_id"])
    ]
    assert len(found) == 1, f"{len(found)} spans {name} ({service}, {kind}) under {parent}"
    return found[0]


def children(spans: list[Span], parent: Span) -> list[Span]:
    return [s for s in spans if s["parent_span_id"] == parent["span_id"]]


def downstream(spans: list[Span], served: Span, service: str, method: str) -> list[Span]:
    """Every call orders made to `method` while serving: the mesh's span, the
    attempt's client span under it, and the callee's server span under that."""
    hops = []
    for mesh in children(spans, served):
        if mesh["name"] != f"mesh {service}":
            continue
        assert mesh["kind"] == "INTERNAL" and mesh["service"] == "orders"
        assert mesh["attributes"]["trademesh.service"] == service
        assert mesh["attributes"]["trademesh.endpoint"] == f"{service}-0"
        assert mesh["attributes"]["trademesh.attempts"] == 1
        (attempt,) = children(spans, mesh)
        if attempt["name"] != method:
            continue
        assert (attempt["kind"], attempt["service"]) == ("CLIENT", "orders")
        callee = only(spans, method, service, "SERVER", attempt)
        hops.append(callee)
    return hops


def test_one_order_is_one_trace_across_every_hop(traced_calls) -> None:
    spans: list[Span] = traced_calls["buy"]
    assert traced_calls["bought"].order.status == common_pb2.ORDER_STATUS_FILLED
    assert spans and {s["trace_id"] for s in spans} == {spans[0]["trace_id"]}

    root = only(spans, "buy", "test-client", "INTERNAL", None)
    assert root["parent_span_id"] is None
    place = "/trading.v1.OrderService/PlaceOrder"
    client = only(spans, place, "test-client", "CLIENT", root)
    served = only(spans, place, "orders", "SERVER", client)

    assert len(downstream(spans, served, "risk", "/trading.v1.RiskService/Reserve")) == 1
    assert len(downstream(spans, served, "matching", "/trading.v1.MatchingEngine/Submit")) == 1
    # It traded with bob's offer: both fills (taker's and maker's) are applied in one
    # Settle call, after the answer, in a span of their own under the PlaceOrder span.
    settle = only(spans, "settle risk", "orders", "INTERNAL", served)
    assert len(downstream(spans, settle, "risk", "/trading.v1.RiskService/Settle")) == 1
    assert [c["name"] for c in children(spans, served)] == [
        "mesh risk",
        "mesh matching",
        "settle risk",
    ]

    for span in spans:
        assert span["status_code"] != "ERROR", span
        assert span["attributes"].get("rpc.grpc.status_code", 0) == 0, span
    steps = [e["name"] for e in served["events"]]
    assert steps == ["saga.reserved", "saga.submitted", "saga.booked"]
    assert [e["name"] for e in settle["events"]] == ["saga.fills_applied", "saga.released"]
    assert served["attributes"]["trademesh.account_id"] == "alice"
    # Health watches, etcd and reflection make no spans: only trading.v1 calls do.
    assert all("trading.v1." in s["name"] or s["kind"] == "INTERNAL" for s in traced_calls["all"])


def test_a_failed_call_has_its_status_in_the_trace_and_one_log_line(traced_calls) -> None:
    assert traced_calls["refused"].code() is grpc.StatusCode.INVALID_ARGUMENT
    spans: list[Span] = traced_calls["invalid"]
    root = only(spans, "invalid", "test-client", "INTERNAL", None)
    place = "/trading.v1.OrderService/PlaceOrder"
    client = only(spans, place, "test-client", "CLIENT", root)
    served = only(spans, place, "orders", "SERVER", client)
    assert client["status_code"] == "ERROR"
    assert client["attributes"]["rpc.grpc.status_code"] == 3
    assert served["attributes"]["rpc.grpc.status_code"] == 3
    assert children(spans, served) == []  # refused before any downstream call

    lines = [json.loads(line) for line in _json_lines(traced_calls["orders_log"])]
    trace_id = root["trace_id"]
    (failed,) = [line for line in lines if line.get("trace_id") == trace_id]
    assert failed["code"] == "INVALID_ARGUMENT" and failed["method"] == place
    assert failed["service"] == "orders" and failed["level"] == "INFO"
    assert "quantity" in failed["details"] and failed["duration_ms"] >= 0
    assert failed["span_id"] == served["span_id"]
    # A successful call logs nothing.
    buy_trace = traced_calls["buy"][0]["trace_id"]
    assert not [line for line in lines if line.get("trace_id") == buy_trace]


def _json_lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.startswith("{")]
