"""RetryBudget: retries <= ratio x original calls + floor, per sliding window."""

from __future__ import annotations

import pytest

from clients.resilience.retry_budget import RetryBudget


def test_floor_allows_min_per_second_times_window_with_no_traffic(clock) -> None:
    budget = RetryBudget(ratio=0.2, min_per_second=10, window_seconds=10, clock=clock)
    granted = sum(budget.try_acquire_retry() for _ in range(500))
    assert granted == 100
    assert budget.available == 0


def test_each_call_earns_ratio_of_a_retry(clock) -> None:
    budget = RetryBudget(ratio=0.2, min_per_second=0, window_seconds=10, clock=clock)
    for _ in range(50):
        budget.record_request()
    assert budget.available == 10
    assert sum(budget.try_acquire_retry() for _ in range(50)) == 10


def test_outage_caps_retries_at_ratio_of_traffic_plus_floor(clock) -> None:
    """1,000 calls/s for 30 s, every call fails and wants up to 3 retries."""
    budget = RetryBudget(clock=clock)  # Linkerd defaults: 20%, 10/s, 10 s
    per_second: list[int] = []
    for _second in range(30):
        retries = 0
        for _ in range(1_000):
            budget.record_request()
            for _attempt in range(3):
                if not budget.try_acquire_retry():
                    break
                retries += 1
            clock.advance(0.001)
        per_second.append(retries)
    # Any 10 s window: at most 0.2 * 10,000 calls + 10/s * 10 s = 2,100 retries.
    for start in range(21):
        assert sum(per_second[start : start + 10]) <= 2_100
    # In steady state the budget is used, not starved: ~200 + 10 a second.
    assert sum(per_second[10:]) / 20 == pytest.approx(210, rel=0.1)
    assert sum(per_second) / 30_000 < 0.25


def test_budget_refills_as_the_window_slides(clock) -> None:
    budget = RetryBudget(ratio=0.0, min_per_second=1, window_seconds=10, clock=clock)
    assert sum(budget.try_acquire_retry() for _ in range(20)) == 10
    clock.advance(5)
    assert not budget.try_acquire_retry()
    clock.advance(5)  # the spent retries left the window
    assert sum(budget.try_acquire_retry() for _ in range(20)) == 10


def test_retries_do_not_earn_budget(clock) -> None:
    budget = RetryBudget(ratio=1.0, min_per_second=0, clock=clock)
    budget.record_request()
    assert budget.try_acquire_retry()
    assert not budget.try_acquire_retry()


def test_zero_budget_forbids_retries(clock) -> None:
    budget = RetryBudget(ratio=0, min_per_second=0, clock=clock)
    for _ in range(100):
        budget.record_request()
    assert not budget.try_acquire_retry()


def test_negative_ratio_is_refused() -> None:
    with pytest.raises(ValueError, match="ratio=0, min_per_second=0"):
        RetryBudget(ratio=-0.1)
