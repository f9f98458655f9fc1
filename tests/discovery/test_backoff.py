"""Capped exponential backoff with jitter."""

from __future__ import annotations

import pytest

from discovery.backoff import Backoff


def test_grows_to_the_cap_with_jitter_and_resets() -> None:
    backoff = Backoff(initial=0.1, maximum=1.0, multiplier=2.0, jitter=0.2)
    delays = [backoff.next() for _ in range(8)]
    for delay, base in zip(delays, [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0, 1.0], strict=True):
        assert base * 0.8 <= delay <= base * 1.2
    backoff.reset()
    assert backoff.next() <= 0.12


def test_many_failures_stay_capped() -> None:
    backoff = Backoff(jitter=0.0)
    for _ in range(10_000):
        delay = backoff.next()
    assert delay == backoff.maximum


def test_nonsense_settings_fail_early() -> None:
    with pytest.raises(ValueError):
        Backoff(initial=2.0, maximum=1.0)
