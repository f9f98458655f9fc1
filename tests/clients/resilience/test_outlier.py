"""OutlierDetector: consecutive failures eject; growth, cap, max share, expiry, decay."""

from __future__ import annotations

import pytest

from clients.resilience.outlier import OutlierDetector


def detector(clock, hosts: int = 4, **kwargs: float) -> OutlierDetector:
    d = OutlierDetector(clock=clock, **kwargs)  # type: ignore[arg-type]
    d.set_endpoints(f"e{i}" for i in range(hosts))
    return d


def fail(d: OutlierDetector, key: str, times: int = 5) -> bool:
    return any([d.record(key, False) for _ in range(times)])


def eject_and_return(d: OutlierDetector, clock, key: str) -> float:
    """Ejects `key`, waits out the ejection; returns how long it lasted."""
    assert fail(d, key)
    start = clock.now
    while not d.refresh():
        clock.advance(1)
    return clock.now - start


def test_fifth_consecutive_failure_ejects(clock) -> None:
    d = detector(clock)
    assert [d.record("e1", False) for _ in range(5)] == [False] * 4 + [True]
    assert d.is_ejected("e1")
    assert d.ejected() == {"e1"}
    assert not d.record("e1", False)  # already out: no change


def test_a_success_resets_the_count(clock) -> None:
    d = detector(clock)
    for _ in range(10):
        fail(d, "e1", times=4)
        d.record("e1", True)
    assert not d.ejected()


def test_ejection_time_grows_with_each_ejection_and_is_capped(clock) -> None:
    d = detector(clock)
    durations = [eject_and_return(d, clock, "e1") for _ in range(12)]
    assert durations[:4] == [30, 60, 90, 120]
    assert durations[-1] == 300
    assert max(durations) == 300


def test_refresh_returns_endpoints_when_due(clock) -> None:
    d = detector(clock)
    fail(d, "e1")
    clock.advance(20)
    fail(d, "e2")
    clock.advance(9.9)
    assert not d.refresh()
    clock.advance(0.1)
    assert d.refresh()
    assert d.ejected() == {"e2"}
    clock.advance(20)
    assert d.refresh()
    assert not d.ejected()
    assert not d.refresh()


def test_at_most_max_percent_ejected_at_once(clock) -> None:
    d = detector(clock, hosts=4)  # 50%: two of four
    assert fail(d, "e0")
    assert fail(d, "e1")
    assert not fail(d, "e2")
    assert d.ejected() == {"e0", "e1"}
    clock.advance(30)
    assert d.refresh()
    assert d.record("e2", False)  # still over the threshold: ejected at the next failure
    assert d.ejected() == {"e2"}


def test_never_ejects_the_last_endpoint(clock) -> None:
    alone = detector(clock, hosts=1)
    assert not fail(alone, "e0", times=50)
    pair = detector(clock, hosts=2, max_ejection_percent=100)
    assert fail(pair, "e0")
    assert not fail(pair, "e1", times=50)


def test_ejects_at_least_one_when_percent_rounds_to_zero(clock) -> None:
    d = detector(clock, hosts=3, max_ejection_percent=10)  # Envoy: at least one host
    assert fail(d, "e0")
    assert not fail(d, "e1")


def test_zero_percent_disables_ejection(clock) -> None:
    d = detector(clock, max_ejection_percent=0)
    assert not fail(d, "e0", times=50)


def test_multiplier_decays_one_per_healthy_base_period(clock) -> None:
    d = detector(clock)
    for _ in range(3):
        eject_and_return(d, clock, "e1")
    assert d.ejection_multiplier("e1") == 3
    clock.advance(30)
    assert d.ejection_multiplier("e1") == 2
    clock.advance(60)
    assert d.ejection_multiplier("e1") == 0
    assert eject_and_return(d, clock, "e1") == 30  # healed: back to the base ejection


def test_departed_endpoints_are_forgotten(clock) -> None:
    d = detector(clock)
    fail(d, "e1")
    assert d.set_endpoints(["e0", "e2", "e3", "e4"])  # e1 left while ejected
    assert not d.ejected()
    assert not d.refresh()
    assert not d.set_endpoints(["e0", "e2", "e3", "e4"])
    assert d.ejection_multiplier("e1") == 0


def test_unknown_keys_are_learnt_from_records(clock) -> None:
    d = OutlierDetector(clock=clock)
    d.record("a", True)
    d.record("b", True)
    assert fail(d, "a")
    assert not fail(d, "b")  # the last one left stays in


def test_invalid_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="max_ejection_percent=0"):
        OutlierDetector(consecutive_failures=0)
    with pytest.raises(ValueError, match=r"\[0, 100\]"):
        OutlierDetector(max_ejection_percent=150)
