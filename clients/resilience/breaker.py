"""Adaptive client-side throttling (Google SRE book, ch. 21 "Handling Overload"), as
go-zero's googlebreaker: a client that sees its backend reject most calls starts failing
calls locally, in proportion, instead of sending them.

https://sre.google/sre-book/handling-overload/#eq2101

    reject probability = max(0, (requests - protection - K * accepts) / (requests + 1))

over a sliding window of WINDOW_SECONDS in WINDOW_BUCKETS buckets. `requests` counts
every call the application attempted, including the ones this throttle rejected
locally (that is what lets the probability approach 1 in a total outage); `accepts`
counts calls the backend answered (the channel decides which status codes count as
"answered": go-zero treats only DEADLINE_EXCEEDED, INTERNAL, UNAVAILABLE, DATA_LOSS,
UNIMPLEMENTED and RESOURCE_EXHAUSTED as failures). While rejecting, one call is still
let through every FORCE_PASS_SECONDS, so recovery is noticed. As accepts return, the
share let through grows by about K per window (local rejections count as requests), so
after a total outage the throttle takes a few windows to open fully: ~43 s at 100
calls/s after a 10 s outage (tests/clients/resilience/test_breaker.py). That is the
SRE design trading recovery speed for not stampeding a backend that just came back.

Simplified from go-zero: K stays fixed (go-zero lowers it toward 1.1 as buckets fail)
and the probability is not scaled by the share of buckets with traffic.

Lock-free: owned by one event loop. Hot path: O(1), no allocation.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from clients.resilience._window import RollingPair

K = 1.5  # SRE book: "K = 2 ... K = 1.1"; go-zero googlebreaker k = 1.5 (rejects sooner)
WINDOW_SECONDS = 10.0  # go-zero googlebreaker window
WINDOW_BUCKETS = 40  # go-zero googlebreaker buckets (250 ms each)
PROTECTION = 5  # go-zero: the first 5 requests of a window are never rejected
FORCE_PASS_SECONDS = 1.0  # go-zero forcePassDuration: one probe per second while rejecting


class AdaptiveThrottle:
    """Rejects calls locally with the SRE probability; one per backend (service) target."""

    __slots__ = ("_clock", "_last_pass", "_random", "_window", "k", "protection")

    def __init__(
        self,
        k: float = K,
        window_seconds: float = WINDOW_SECONDS,
        buckets: int = WINDOW_BUCKETS,
        protection: int = PROTECTION,
        *,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if k < 1:
            raise ValueError(f"k must be >= 1 (1 rejects at the first failure), got {k}")
        self.k = k
        self.protection = protection
        self._window = RollingPair(window_seconds, buckets, clock)  # requests, accepts
        self._random = rng.random if rng else random.random
        self._clock = clock
        self._last_pass = clock()

    def reject_probability(self) -> float:
        w = self._window
        w.roll()
        p = (w.first - self.protection - self.k * w.second) / (w.first + 1)
        return p if p > 0.0 else 0.0

    def allow(self) -> bool:
        """True: send the call, then `record()` its outcome. False: fail it locally
        (as UNAVAILABLE); the rejection is already counted as a request."""
        p = self.reject_probability()
        if p <= 0.0:
            return True
        now = self._clock()
        if now - self._last_pass > FORCE_PASS_SECONDS or self._random() >= p:
            self._last_pass = now
            return True
        self._window.add(1, 0)
        return False

    def record(self, success: bool) -> None:
        """Outcome of a call `allow()` let through: success = the backend accepted it."""
        self._window.add(1, 1 if success else 0)

    @property
    def requests(self) -> int:
        self._window.roll()
        return self._window.first

    @property
    def accepts(self) -> int:
        self._window.roll()
        return self._window.second
