"""EndpointStats: in-flight count, peak-EWMA latency with decay, success EWMA, load."""

from __future__ import annotations

import math

import pytest

from clients.balancers.endpoint import DECAY_SECONDS, DEFAULT_RTT_SECONDS, EndpointStats


def call(ep: EndpointStats, clock, seconds: float, ok: bool = True) -> None:
    started = ep.on_start()
    clock.advance(seconds)
    ep.on_finish(started, ok)


def test_default_rtt_before_any_response(clock) -> None:
    ep = EndpointStats("a", "10.0.0.1:50051", clock=clock)
    assert ep.latency == DEFAULT_RTT_SECONDS
    clock.advance(60)  # the default does not decay: it is a prior, not a measurement
    assert ep.latency == DEFAULT_RTT_SECONDS
    assert ep.load() == pytest.approx(DEFAULT_RTT_SECONDS)


def test_outstanding_tracks_calls_in_flight(clock) -> None:
    ep = EndpointStats("a", "x", clock=clock)
    s1, s2 = ep.on_start(), ep.on_start()
    assert ep.outstanding == 2
    assert ep.load() == pytest.approx(3 * DEFAULT_RTT_SECONDS)
    ep.on_finish(s1, True)
    ep.on_finish(s2, False)
    assert ep.outstanding == 0


def test_first_response_sets_the_estimate(clock) -> None:
    ep = EndpointStats("a", "x", clock=clock)
    call(ep, clock, 0.005)
    assert ep.latency == pytest.approx(0.005)


def test_peak_slow_response_replaces_the_estimate_at_once(clock) -> None:
    ep = EndpointStats("a", "x", clock=clock)
    call(ep, clock, 0.005)
    call(ep, clock, 0.400)
    assert ep.latency == pytest.approx(0.400)


def test_fast_responses_are_blended_by_elapsed_time(clock) -> None:
    ep = EndpointStats("a", "x", clock=clock)
    call(ep, clock, 0.100)
    clock.advance(DECAY_SECONDS - 0.010)
    call(ep, clock, 0.010)  # 10 s after the last response: weight 1 - 1/e
    w = math.exp(-1.0)
    assert ep.latency == pytest.approx(0.100 * w + 0.010 * (1 - w))


def test_estimate_decays_toward_zero_while_idle(clock) -> None:
    ep = EndpointStats("a", "x", clock=clock)
    call(ep, clock, 0.200)
    clock.advance(DECAY_SECONDS)
    assert ep.latency == pytest.approx(0.200 / math.e)
    assert ep.latency_at(clock.now + 100 * DECAY_SECONDS) < 1e-6


def test_load_is_latency_times_in_flight_plus_one_over_weight(clock) -> None:
    ep = EndpointStats("a", "x", weight=2, clock=clock)
    call(ep, clock, 0.050)
    ep.on_start()
    ep.on_start()
    assert ep.load() == pytest.approx(0.050 * 3 / 2)
    assert ep.load(clock.now) == ep.load()


def test_failures_drive_success_below_healthy(clock) -> None:
    ep = EndpointStats("a", "x", clock=clock)
    assert ep.healthy
    for _ in range(20):
        call(ep, clock, 1.0, ok=False)
    assert ep.success < 0.5
    assert not ep.healthy
    clock.advance(30)  # a success after a long quiet spell counts for a lot
    call(ep, clock, 0.01, ok=True)
    assert ep.healthy


def test_weight_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="weight must be >= 1"):
        EndpointStats("a", "x", weight=0)
