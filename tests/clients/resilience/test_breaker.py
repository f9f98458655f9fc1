"""AdaptiveThrottle: the SRE client-side throttling probability, force-pass and recovery."""

from __future__ import annotations

import random

import pytest

from clients.resilience.breaker import FORCE_PASS_SECONDS, AdaptiveThrottle


def throttle(clock, seed: int = 1) -> AdaptiveThrottle:
    return AdaptiveThrottle(rng=random.Random(seed), clock=clock)


def test_healthy_backend_is_never_throttled(clock) -> None:
    t = throttle(clock)
    for _ in range(10_000):
        assert t.allow()
        t.record(True)
        clock.advance(0.001)
    assert t.reject_probability() == 0.0


def test_probability_is_the_sre_formula(clock) -> None:
    t = throttle(clock)
    for i in range(100):
        t.record(i < 20)
    assert t.requests == 100
    assert t.accepts == 20
    assert t.reject_probability() == pytest.approx((100 - 5 - 1.5 * 20) / 101)


def test_rejects_more_as_the_accept_ratio_falls(clock) -> None:
    probabilities = []
    for accept_ratio in (1.0, 0.8, 0.6, 0.4, 0.2, 0.0):
        t = throttle(clock)
        for i in range(1_000):
            t.record(i < accept_ratio * 1_000)
        probabilities.append(t.reject_probability())
    assert probabilities[:2] == [0.0, 0.0]  # K = 1.5: up to 1/3 failures are tolerated
    assert probabilities == sorted(probabilities)
    assert probabilities[-1] > 0.99


def test_outage_rejects_locally_and_counts_rejections_as_requests(clock) -> None:
    t = throttle(clock)
    sent = 0
    for _ in range(2_000):
        if t.allow():
            sent += 1
            t.record(False)
    assert sent < 100  # the first few, then a trickle
    assert t.requests == 2_000 and t.accepts == 0


def test_one_call_passes_per_second_while_rejecting(clock) -> None:
    t = throttle(clock)
    for _ in range(1_000):
        t.record(False)
    assert t.reject_probability() > 0.99
    for _ in range(200):  # let any random pass update the last-pass time
        t.allow()
    clock.advance(FORCE_PASS_SECONDS + 0.01)
    assert t.allow()  # the probe


def test_recovers_once_the_backend_answers_again(clock) -> None:
    """After a 10 s outage at 100 calls/s, a healthy backend gets its traffic back.

    Rejected calls count as requests, so the allowed share grows by about K per
    window rather than at once: recovery takes a few windows, not one.
    """
    t = throttle(clock)
    for _ in range(1_000):  # the outage
        if t.allow():
            t.record(False)
        clock.advance(0.01)
    allowed_per_second = []
    while t.reject_probability() > 0.0 and len(allowed_per_second) < 120:
        allowed = 0
        for _ in range(100):
            if t.allow():
                allowed += 1
                t.record(True)
            clock.advance(0.01)
        allowed_per_second.append(allowed)
    assert allowed_per_second[0] < 10  # still throttling right after the outage
    assert len(allowed_per_second) < 60  # fully open again within a minute
    assert t.allow()


def test_k_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="k must be >= 1"):
        AdaptiveThrottle(k=0.5)
