"""P2CPicker: avoids slow, busy and failing endpoints; probes stale ones; honours weight."""

from __future__ import annotations

import random
from collections import Counter

from clients.balancers import POLICIES
from clients.balancers.endpoint import EndpointStats
from clients.balancers.p2c import FORCE_PICK_SECONDS, P2CPicker


def make(clock, n: int, weights: list[int] | None = None) -> list[EndpointStats]:
    ws = weights or [1] * n
    return [EndpointStats(f"e{i}", f"10.0.0.{i}:1", weight=ws[i], clock=clock) for i in range(n)]


def respond(ep: EndpointStats, clock, seconds: float, ok: bool = True) -> None:
    started = ep.on_start()
    clock.advance(seconds)
    ep.on_finish(started, ok)


def test_empty_and_single() -> None:
    assert P2CPicker([]).pick() is None
    only = EndpointStats("a", "x")
    assert P2CPicker([only]).pick() is only


def test_avoids_a_slow_endpoint(clock) -> None:
    eps = make(clock, 5)
    for ep in eps[1:]:
        respond(ep, clock, 0.010)
    respond(eps[0], clock, 0.500)
    picker = P2CPicker(eps, rng=random.Random(1), clock=clock)
    picks = Counter(picker.pick().key for _ in range(10_000))  # type: ignore[union-attr]
    assert picks["e0"] < 1_000  # (here 0: the clock stands still, so no force-pick)


def test_avoids_an_endpoint_with_many_calls_in_flight(clock) -> None:
    eps = make(clock, 4)
    for ep in eps:
        respond(ep, clock, 0.010)
    for _ in range(20):
        eps[2].on_start()
    picker = P2CPicker(eps, rng=random.Random(2), clock=clock)
    picks = Counter(picker.pick().key for _ in range(10_000))  # type: ignore[union-attr]
    assert picks["e2"] < 1_000


def test_a_stale_endpoint_is_force_picked_once(clock) -> None:
    fast, slow = make(clock, 2)
    respond(fast, clock, 0.010)
    respond(slow, clock, 0.900)
    picker = P2CPicker([fast, slow], rng=random.Random(3), clock=clock)
    assert picker.pick() is fast  # both picked recently enough at creation
    clock.advance(FORCE_PICK_SECONDS + 0.1)
    assert picker.pick() is slow  # unpicked for > 1 s: probed once
    assert [picker.pick() for _ in range(50)] == [fast] * 50
    clock.advance(FORCE_PICK_SECONDS + 0.1)
    assert picker.pick() is slow


def test_prefers_healthy_endpoints(clock) -> None:
    eps = make(clock, 5)
    for ep in eps:
        respond(ep, clock, 0.020)
    for _ in range(10):
        clock.advance(1.0)  # the success EWMA is time-weighted: a burst in 1 ms barely counts
        respond(eps[0], clock, 0.001, ok=False)  # fails fast: cheapest by latency alone
    assert not eps[0].healthy
    picker = P2CPicker(eps, rng=random.Random(4), clock=clock)
    picks = Counter(picker.pick().key for _ in range(10_000))  # type: ignore[union-attr]
    assert picks["e0"] < 300  # only when all PICK_TRIES draws include it (~(2/5)^3)


def test_weight_scales_the_share_of_calls_in_flight(clock) -> None:
    eps = make(clock, 3, weights=[1, 1, 3])
    for ep in eps:
        respond(ep, clock, 0.010)
    picker = P2CPicker(eps, rng=random.Random(5), clock=clock)
    for _ in range(500):  # calls that stay in flight: P2C levels outstanding / weight
        picker.pick().on_start()  # type: ignore[union-attr]
    heavy = eps[2].outstanding
    light = (eps[0].outstanding + eps[1].outstanding) / 2
    assert 2.0 < heavy / light < 4.0


def test_ignores_the_key_and_is_registered(clock) -> None:
    eps = make(clock, 3)
    picker = POLICIES["p2c"](eps)
    assert isinstance(picker, P2CPicker)
    assert picker.pick("acct-1") in eps
