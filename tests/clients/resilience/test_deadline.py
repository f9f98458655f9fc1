"""Deadline math and per-method default timeouts."""

from __future__ import annotations

import pytest

from clients.resilience.deadline import (
    DEFAULT_TIMEOUT_SECONDS,
    DEFAULT_TIMEOUTS,
    Deadline,
    MethodTimeouts,
    remaining,
)

RESERVE = "/trading.v1.RiskService/Reserve"
RELEASE = "/trading.v1.RiskService/Release"
SUBMIT = "/trading.v1.OrderService/Submit"


def test_remaining(clock) -> None:
    assert remaining(None, clock) is None
    assert remaining(clock.now + 1.5, clock) == 1.5
    assert remaining(clock.now - 1.0, clock) == 0.0


def test_deadline_counts_down_and_expires(clock) -> None:
    d = Deadline.after(2.0, clock)
    assert d.remaining() == 2.0
    assert not d.expired
    clock.advance(2.0)
    assert d.remaining() == 0.0
    assert d.expired
    clock.advance(1.0)
    assert d.remaining() == 0.0


def test_from_remaining_takes_a_servers_time_remaining(clock) -> None:
    assert Deadline.from_remaining(None, clock) is None
    d = Deadline.from_remaining(0.25, clock)
    assert d is not None
    assert d.at == clock.now + 0.25


def test_earliest_only_shortens(clock) -> None:
    near, far = Deadline.after(1, clock), Deadline.after(5, clock)
    assert near.earliest(far) is near
    assert far.earliest(near) is near
    assert far.earliest(None) is far
    assert near == Deadline(near.at)  # the clock is not part of the value


def test_global_default_is_go_zeros_two_seconds() -> None:
    assert DEFAULT_TIMEOUT_SECONDS == 2.0
    assert DEFAULT_TIMEOUTS[RESERVE] == 2.0


def test_method_beats_service_beats_default() -> None:
    timeouts = MethodTimeouts({"trading.v1.RiskService": 0.5, RESERVE: 0.2}, default=3.0)
    assert timeouts[RESERVE] == 0.2
    assert timeouts[RELEASE] == 0.5
    assert timeouts[SUBMIT] == 3.0
    assert timeouts[RESERVE] == 0.2  # cached lookups agree


def test_names_are_normalised() -> None:
    timeouts = MethodTimeouts(
        {"/trading.v1.RiskService/": 0.5, "trading.v1.OrderService/Submit": 1}
    )
    assert timeouts[RELEASE] == 0.5
    assert timeouts[SUBMIT] == 1


def test_inherited_deadline_shortens_the_timeout(clock) -> None:
    timeouts = MethodTimeouts({RESERVE: 0.2})
    assert timeouts.timeout(RESERVE) == 0.2
    assert timeouts.timeout(RESERVE, Deadline.after(5, clock)) == 0.2
    assert timeouts.timeout(RESERVE, Deadline.after(0.05, clock)) == pytest.approx(0.05)
    assert timeouts.timeout(RESERVE, Deadline.after(-1, clock)) == 0.0


def test_non_positive_timeouts_are_refused() -> None:
    with pytest.raises(ValueError, match="must be > 0"):
        MethodTimeouts(default=0)
    with pytest.raises(ValueError, match="RiskService"):
        MethodTimeouts({"trading.v1.RiskService": -1})
