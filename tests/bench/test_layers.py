"""bench/layers.py in quick mode: every layer variant is measured on real processes
in every round with calls and no errors, each variant's summary takes its share of
its baseline round by round, and every interceptor gets a cost."""

from __future__ import annotations

import pytest

from bench.layers import VARIANTS, LayerMeasurement, order, run_layers, summaries

pytestmark = pytest.mark.e2e


def test_rounds_alternate_their_order() -> None:
    assert order(0) == VARIANTS and order(1) == VARIANTS[::-1]


def test_a_summary_is_the_median_of_round_by_round_shares() -> None:
    def figure(key: str, rps: float, cpu: float) -> LayerMeasurement:
        variant = next(v for v in VARIANTS if v.key == key)
        return LayerMeasurement(
            scenario="layers", transport="grpc", variant=variant.label, driver="python-grpc",
            load="closed", concurrency=16, target_rate=None, duration_s=1.0,
            requests=int(rps), errors=0, throughput_rps=rps, latency_ms={"p50": 1.0, "p99": 2.0},
            generator_cpu_s=cpu / 2, server_cpu_s={"server": cpu / 2},
        )  # fmt: skip

    # The machine slows down in round 2: the share, taken within each round, does not.
    rounds = [
        {"a": figure("a", 1000, 0.30), "c": figure("c", 900, 0.30)},
        {"a": figure("a", 500, 0.30), "c": figure("c", 475, 0.30)},
        {"a": figure("a", 1000, 0.30), "c": figure("c", 920, 0.30)},
    ]
    found = {m.variant[:3]: m for m in summaries(rounds)}
    assert set(found) == {"(a)", "(c)"}
    mesh = found["(c)"]
    assert mesh.share == pytest.approx(0.92) and mesh.share_range == pytest.approx((0.9, 0.95))
    assert mesh.mesh_share == mesh.share and mesh.baseline == found["(a)"].variant
    assert mesh.cpu_ratio == pytest.approx(1000 / 920)  # same CPU over fewer calls
    assert mesh.rounds == 3 and mesh.throughput_rps == 900
    assert found["(a)"].share is None and found["(a)"].mesh_share is None


@pytest.mark.timeout(180)
def test_every_layer_variant_answers_every_call_in_every_round() -> None:
    said: list[str] = []
    measured = run_layers(quick=True, progress=said.append, rounds=2)

    figures = [m for m in measured if isinstance(m, LayerMeasurement) and m.round is not None]
    assert [m.variant for m in figures] == [v.label for v in VARIANTS] * 2
    for m in figures:
        assert m.requests > 0 and m.errors == 0, m
        assert m.throughput_rps > 0 and m.latency_ms["p99"] >= m.latency_ms["p50"] > 0
        assert m.server_cpu_s["server"] > 0 and m.generator_cpu_s

    summarized = [m for m in measured if isinstance(m, LayerMeasurement) and m.rounds]
    assert [m.variant for m in summarized] == [v.label for v in VARIANTS]
    for m, variant in zip(summarized, VARIANTS, strict=True):
        assert m.rounds == 2
        assert (m.share is not None) == (variant.baseline is not None)
        assert (m.mesh_share is not None) == variant.mesh
        if m.share_range is not None:
            assert m.share_range[0] <= m.share <= m.share_range[1]  # type: ignore[operator]

    alone = {m.variant.removeprefix("interceptor: ") for m in measured if m.driver == "in-process"}
    assert {"server MetricsInterceptor", "server AuthzInterceptor"} <= alone
    assert "server ChainInterceptor, mTLS (all)" in alone
    assert "server tracing, ServerSpans, unsampled" in alone
    assert any("round 2 of 2" in line for line in said)
