"""RingHashPicker: stable owners, minimal movement on join/leave, weights, random on None."""

from __future__ import annotations

import random
from collections import Counter

from clients.balancers import POLICIES
from clients.balancers.endpoint import EndpointStats
from clients.balancers.ring_hash import VNODES_PER_WEIGHT, RingHashPicker, hash64, moved_keys

KEYS = [f"acct-{i}" for i in range(10_000)]


def ep(name: str, weight: int = 1) -> EndpointStats:
    return EndpointStats(name, f"{name}.local:50051", weight=weight)


def owners(picker: RingHashPicker) -> dict[str, str | None]:
    return {k: picker.owner(k) for k in KEYS}


def test_hash_is_stable_across_processes() -> None:
    # blake2b, not the per-process salted hash(): every client must agree on owners.
    assert hash64("AAPL") == 0xF4EBBFF672FF4A6B
    assert 0 <= hash64("acct-1") < 2**64


def test_same_key_same_owner_whatever_the_endpoint_order() -> None:
    a, b, c = ep("risk-1"), ep("risk-2"), ep("risk-3")
    first = owners(RingHashPicker([a, b, c]))
    assert owners(RingHashPicker([c, a, b])) == first
    assert set(first.values()) == {"risk-1", "risk-2", "risk-3"}


def test_a_joining_endpoint_takes_about_a_quarter_and_nothing_else_moves() -> None:
    three = [ep("risk-1"), ep("risk-2"), ep("risk-3")]
    old = RingHashPicker(three)
    new = RingHashPicker([*three, ep("risk-4")])
    moved = moved_keys(old, new, KEYS)
    assert 0.15 < len(moved) / len(KEYS) < 0.35
    assert all(new.owner(k) == "risk-4" for k in moved)
    assert all(old.owner(k) == new.owner(k) for k in KEYS if new.owner(k) != "risk-4")


def test_a_leaving_endpoint_hands_over_only_its_own_keys() -> None:
    four = [ep("risk-1"), ep("risk-2"), ep("risk-3"), ep("risk-4")]
    old = RingHashPicker(four)
    new = RingHashPicker(four[:2] + four[3:])
    assert {old.owner(k) for k in moved_keys(old, new, KEYS)} == {"risk-3"}


def test_weight_two_owns_about_twice_the_keys() -> None:
    picker = RingHashPicker([ep("a"), ep("b", weight=2), ep("c")])
    share = Counter(owners(picker).values())
    assert 1.6 < share["b"] / share["a"] < 2.4
    assert 1.6 < share["b"] / share["c"] < 2.4
    assert len(picker) == 4 * VNODES_PER_WEIGHT


def test_four_equal_endpoints_make_envoys_minimum_ring_and_fair_shares() -> None:
    picker = RingHashPicker([ep(f"m{i}") for i in range(4)])
    assert len(picker) == 1024
    share = Counter(owners(picker).values())
    assert all(1_750 < n < 3_250 for n in share.values())


def test_no_key_picks_at_random() -> None:
    eps = [ep("a"), ep("b"), ep("c")]
    picker = RingHashPicker(eps, rng=random.Random(9))
    picks = Counter(picker.pick().key for _ in range(3_000))  # type: ignore[union-attr]
    assert set(picks) == {"a", "b", "c"}
    assert min(picks.values()) > 800


def test_empty_ring() -> None:
    picker = RingHashPicker([])
    assert picker.pick("acct-1") is None
    assert picker.pick() is None
    assert picker.owner("acct-1") is None


def test_registered_as_a_policy() -> None:
    picker = POLICIES["ring_hash"]([ep("a")])
    assert isinstance(picker, RingHashPicker)
    assert picker.pick("AAPL").key == "a"  # type: ignore[union-attr]
