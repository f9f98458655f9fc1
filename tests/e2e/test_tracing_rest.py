"""The REST variant traces like the gRPC one: one order placed over HTTP through
real processes makes one trace, the caller's span at its root, orders' server
span under it, and each hop to risk and matching a client span in orders with
the callee's server span under it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from opentelemetry.instrumentation.aiohttp_client import create_trace_config
from opentelemetry.sdk.trace.sampling import ALWAYS_ON

from services.launcher import SERVICE_ORDER, LocalMesh
from services.runtime.telemetry.trace_files import JsonLinesSpanExporter, read_spans
from services.runtime.telemetry.tracing import build_tracer_provider

pytestmark = pytest.mark.e2e
Span = dict[str, Any]


@pytest.fixture(scope="module")
def traced_rest_mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMesh]:
    state_dir = tmp_path_factory.mktemp("traced-rest")
    mesh = LocalMesh.on_free_ports(
        state_dir,
        instances=dict.fromkeys(SERVICE_ORDER, 1),
        trace_dir=state_dir / "traces",
        protocol="rest",
    )
    with mesh.running():
        yield mesh


def order(account: str, key: str, side: str) -> dict[str, Any]:
    return {
        "account_id": account,
        "client_order_id": key,
        "symbol": "AAPL",
        "side": side,
        "type": "ORDER_TYPE_LIMIT",
        "quantity": 10,
        "price": 19_000,
    }


async def place_orders(address: str, trace_dir: Path) -> str:
    """A resting offer, then a buy through it inside the client span "buy"."""
    provider = build_tracer_provider(
        "test-client", "test", sampler=ALWAYS_ON, exporter=JsonLinesSpanExporter(trace_dir / "c")
    )
    tracer = provider.get_tracer(__name__)
    config = create_trace_config(tracer_provider=provider)
    async with aiohttp.ClientSession(f"http://{address}", trace_configs=[config]) as http:
        async with http.post("/v1/orders", json=order("bob", "ask-1", "SIDE_SELL")) as reply:
            assert reply.status == 200, await reply.text()
        with tracer.start_as_current_span("buy") as buy:
            async with http.post("/v1/orders", json=order("alice", "b-1", "SIDE_BUY")) as reply:
                assert reply.status == 200, await reply.text()
                placed = await reply.json()
    assert placed["order"]["status"] == "ORDER_STATUS_FILLED", placed
    provider.shutdown()
    return f"{buy.get_span_context().trace_id:032x}"


def test_one_rest_order_is_one_trace_across_every_hop(traced_rest_mesh: LocalMesh) -> None:
    trace_dir = traced_rest_mesh.trace_dir
    assert trace_dir is not None
    trace_id = asyncio.run(place_orders(traced_rest_mesh.addresses()["orders"], trace_dir))
    codes = traced_rest_mesh.stop()  # every process exports its last spans
    assert set(codes.values()) == {0}, f"unclean exit; see {traced_rest_mesh.state_dir}"
    spans = read_spans(sorted(trace_dir.glob("*")), trace_id)
    by_id = {s["span_id"]: s for s in spans}

    def parent(span: Span) -> Span:
        found = by_id.get(span["parent_span_id"] or "")
        assert found is not None, f"{span['name']} ({span['service']}) has no parent in the trace"
        return found

    [served] = [s for s in spans if s["service"] == "orders" and s["kind"] == "SERVER"]
    assert served["name"] == "POST /v1/orders"
    caller = parent(served)
    assert (caller["service"], caller["kind"]) == ("test-client", "CLIENT")
    assert parent(caller)["name"] == "buy"

    hops = {}
    for callee in ("risk", "matching"):
        server_spans = [s for s in spans if s["service"] == callee and s["kind"] == "SERVER"]
        assert server_spans, f"no {callee} span in the trace: {sorted(by_id)}"
        for span in server_spans:
            hop = parent(span)
            assert (hop["service"], hop["kind"]) == ("orders", "CLIENT"), hop
            assert span["status_code"] != "ERROR", span
        hops[callee] = sorted(s["name"] for s in server_spans)
    # Reserve, then Submit; the fill settles the reservation (ApplyFill / Release).
    assert "POST /v1/reservations" in hops["risk"], hops
    assert "POST /v1/books/{symbol}/orders" in hops["matching"], hops
