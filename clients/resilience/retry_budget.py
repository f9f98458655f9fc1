"""Retry budget, as Linkerd's (Finagle's) RetryBudget: retries may add at most a fixed
share of traffic, plus a small floor, so retries cannot turn an outage into a storm.

Semantics, over a sliding window of `window_seconds` (in WINDOW_BUCKETS time buckets,
so "the window" is exact to one bucket, 1 s by default):

    a retry is allowed  iff  retries + 1 <= ratio * requests + min_per_second * window_seconds

where `requests` counts original calls (`record_request()`; retries never earn budget)
and `retries` counts retries granted by `try_acquire_retry()`, both within the window.
With the defaults (20%, 10/s, 10 s): a client doing 1,000 calls/s that all fail gets at
most 0.2 * 10,000 + 100 = 2,100 retries per 10 s, i.e. ~1.2x load at worst, whatever
its per-call retry policy says; a client doing 1 call/s can still retry each call.

Lock-free: owned by one event loop. Hot path: O(1), no allocation.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from clients.resilience._window import RollingPair

RETRY_RATIO = 0.2  # Linkerd ServiceProfile retryBudget.retryRatio default
MIN_RETRIES_PER_SECOND = 10.0  # Linkerd retryBudget.minRetriesPerSecond default
WINDOW_SECONDS = 10.0  # Linkerd retryBudget.ttl default
WINDOW_BUCKETS = 10  # Finagle RetryBudget's WindowedAdder slices


class RetryBudget:
    """Grants retries while they stay within `ratio` of original calls plus a floor."""

    __slots__ = ("_reserve", "_window", "ratio")

    def __init__(
        self,
        ratio: float = RETRY_RATIO,
        min_per_second: float = MIN_RETRIES_PER_SECOND,
        window_seconds: float = WINDOW_SECONDS,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ratio < 0 or min_per_second < 0:
            raise ValueError(
                f"ratio and min_per_second must be >= 0, got {ratio}, {min_per_second}; "
                "use ratio=0, min_per_second=0 to forbid retries"
            )
        self.ratio = ratio
        self._reserve = min_per_second * window_seconds
        self._window = RollingPair(window_seconds, WINDOW_BUCKETS, clock)  # requests, retries

    def record_request(self) -> None:
        """Count one original call (not a retry): it earns `ratio` of a retry."""
        self._window.add(1, 0)

    def try_acquire_retry(self) -> bool:
        """Spend one retry if the budget allows it; False means: fail, do not retry."""
        w = self._window
        w.roll()
        if w.second + 1 <= self.ratio * w.first + self._reserve:
            w.add(0, 1)
            return True
        return False

    @property
    def available(self) -> int:
        """Retries that would be granted now (for metrics)."""
        w = self._window
        w.roll()
        return max(0, int(self.ratio * w.first + self._reserve) - w.second)
