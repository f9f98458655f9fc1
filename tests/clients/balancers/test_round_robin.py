"""RoundRobinPicker: exact evenness, weighted interleaving, random start."""

from __future__ import annotations

import random
from collections import Counter

from clients.balancers import POLICIES
from clients.balancers.endpoint import EndpointStats
from clients.balancers.round_robin import (
    MAX_SCHEDULE,
    RoundRobinPicker,
    smooth_weighted_schedule,
)


def endpoints(*weights: int) -> list[EndpointStats]:
    return [EndpointStats(f"e{i}", f"10.0.0.{i}:1", weight=w) for i, w in enumerate(weights)]


def counts(picker: RoundRobinPicker, picks: int) -> Counter[str]:
    return Counter(picker.pick().key for _ in range(picks))  # type: ignore[union-attr]


def test_equal_weights_are_exactly_even() -> None:
    picker = RoundRobinPicker(endpoints(1, 1, 1, 1, 1), rng=random.Random(7))
    assert counts(picker, 5 * 200) == {f"e{i}": 200 for i in range(5)}


def test_every_window_of_n_picks_visits_every_endpoint() -> None:
    picker = RoundRobinPicker(endpoints(1, 1, 1), rng=random.Random(1))
    picks = [picker.pick().key for _ in range(30)]  # type: ignore[union-attr]
    assert all(len(set(picks[i : i + 3])) == 3 for i in range(0, 30, 3))


def test_weights_are_proportional_and_interleaved() -> None:
    picker = RoundRobinPicker(endpoints(1, 3), rng=random.Random(3))
    assert counts(picker, 4 * 250) == {"e0": 250, "e1": 750}
    assert smooth_weighted_schedule([1, 3]) == [1, 0, 1, 1]  # not A B B B


def test_large_weights_are_scaled_not_refused() -> None:
    schedule = smooth_weighted_schedule([1000, 3001])
    assert len(schedule) <= MAX_SCHEDULE + 2
    share = schedule.count(1) / len(schedule)
    assert abs(share - 3001 / 4001) < 0.01


def test_start_offset_is_random() -> None:
    eps = endpoints(1, 1, 1, 1, 1, 1, 1, 1)
    firsts = {RoundRobinPicker(eps, rng=random.Random(seed)).pick() for seed in range(40)}
    assert len(firsts) >= 5


def test_no_endpoints_picks_none() -> None:
    assert RoundRobinPicker([]).pick() is None
    assert RoundRobinPicker([]).pick("acct-1") is None


def test_registered_as_a_policy() -> None:
    eps = endpoints(1, 1)
    assert isinstance(POLICIES["round_robin"](eps), RoundRobinPicker)
