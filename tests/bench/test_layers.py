"""bench/layers.py in quick mode: every layer variant is measured on real processes
with calls and no errors, and every interceptor gets a cost."""

from __future__ import annotations

import pytest

from bench.layers import VARIANTS, run_layers

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(120)
def test_every_layer_variant_answers_every_call() -> None:
    said: list[str] = []
    measured = run_layers(quick=True, progress=said.append)

    variants = [m for m in measured if m.driver == "python-grpc"]
    assert [m.variant for m in variants] == [v.label for v in VARIANTS]
    for m in variants:
        assert m.requests > 0 and m.errors == 0, m
        assert m.throughput_rps > 0 and m.latency_ms["p99"] >= m.latency_ms["p50"] > 0
        assert m.server_cpu_s["server"] > 0 and "of (a)" in m.notes
    assert variants[0].notes.startswith("100% of (a)")

    alone = {m.variant.removeprefix("interceptor: ") for m in measured if m.driver == "in-process"}
    assert {"server MetricsInterceptor", "server AuthzInterceptor"} <= alone
    assert "server tracing, ServerSpans, unsampled" in alone
    assert any("layers" in line for line in said)
