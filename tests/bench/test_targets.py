"""bench/targets.py on hand-made figures: each target row carries the run's own
figure and a verdict that follows it; failing figures give no verdict."""

from __future__ import annotations

from typing import Any

from bench import targets
from tests.bench.test_report import figure


def place_order(transport: str, orders_per_s: float, p99: float, **changes: Any) -> dict:
    fields: dict[str, Any] = {
        "scenario": "place_order",
        "variant": ("grpc.aio mesh" if transport == "grpc" else "FastAPI mesh") + ", mTLS",
        "items_per_s": orders_per_s,
        "throughput_rps": orders_per_s,
        "latency_ms": {"p50": 1.0, "p99": p99},
    }
    return figure(transport, **{**fields, **changes})


def rows(figures: list[dict[str, Any]]) -> list[str]:
    return [line for line in targets.targets_table(figures) if line.startswith("| ") and
            not line.startswith("| target")]  # fmt: skip


def test_place_order_is_met_only_with_more_throughput_at_no_worse_p99() -> None:
    faster_but_slower_tail = rows([place_order("grpc", 900, 70), place_order("rest", 800, 60)])
    assert faster_but_slower_tail == [
        "| PlaceOrder, 3 hops over mTLS, c16 | gRPC orders/s >= FastAPI's, at <= its p99 "
        "| 900 vs 800/s (1.12x), p99 70.0 vs 60.0 ms | not met |"
    ]
    both = rows([place_order("grpc", 900, 50), place_order("rest", 800, 60)])
    assert both[0].endswith("| met |")


def test_a_failing_figure_gives_no_verdict() -> None:
    lines = rows([place_order("grpc", 900, 50, errors=3), place_order("rest", 800, 60)])
    assert lines[0].endswith("| not measured |")


def test_batched_entry_needs_the_absolute_goal_and_the_rest_batch() -> None:
    def entry(transport: str, orders_per_s: float) -> dict:
        return place_order(
            transport, orders_per_s, 200, scenario="order_entry", items_per_request=100,
            concurrency=4,
        )  # fmt: skip

    lines = rows([entry("grpc", 1_900), entry("rest", 1_700)])
    assert lines == [
        "| Batched OrderEntry, 100 per message, c4 | >= 50,000 orders/s and >= the REST batch "
        "endpoint | 1,900 orders/s vs REST batch 1,700/s | not met |"
    ]
    assert rows([entry("grpc", 60_000), entry("rest", 1_700)])[0].endswith("| met |")


def test_fanout_smaller_than_the_goal_is_never_met() -> None:
    small = place_order(
        "grpc", 20_000, 20, scenario="fanout", load="open", concurrency=100,
        notes="StreamQuotes; feeder 100 trades/s; lag = receive - quote timestamp",
    )  # fmt: skip
    line = rows([small])[0]
    assert "100 subscribers at 100 trades/s" in line
    assert line.endswith("| not met (smaller than the goal) |")
    full = dict(small, concurrency=1_000, notes="feeder 1000 trades/s")
    assert rows([full])[0].endswith("| met |")


def test_mesh_share_rows_come_from_layers_summaries() -> None:
    summary = figure(
        "grpc", scenario="layers", variant="plaintext: MeshServer + MeshChannel",
        mesh_share=0.88, mesh_share_range=[0.8, 0.93],
    )  # fmt: skip
    assert rows([summary]) == [
        "| Mesh overhead, plaintext: MeshServer + MeshChannel | >= 85% of a bare grpc.aio "
        "call's throughput | 88% (range 80%-93%) | met |"
    ]
    assert rows([dict(summary, mesh_share=0.7)])[0].endswith("| not met |")


def test_no_target_measured_gives_no_section() -> None:
    assert targets.targets_table([figure("grpc")]) == []
