"""Power of two random choices over peak-EWMA load, as go-zero's p2c_ewma and Linkerd.

Draw two distinct endpoints at random and send the call to the one with the lower
`EndpointStats.load()` (latency x (in flight + 1) / weight). Two random candidates avoid
both the herd behaviour of "always the least loaded" with stale data and the O(N) scan;
Mitzenmacher's result is that the second choice already gives most of the benefit.

Two go-zero rules on top:
- up to PICK_TRIES draws to find a pair of healthy endpoints (success EWMA >= 0.5), so a
  fast-failing endpoint does not attract traffic by looking cheap;
- if the losing candidate has not been picked for FORCE_PICK_SECONDS it is picked anyway,
  once, so an endpoint that was slow or failing gets probed and can show it recovered.

Hot path: one clock read, at most 2-6 `random()` calls and two `load()` calls per pick,
no allocation.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence

from clients.balancers.endpoint import HEALTHY_SUCCESS, EndpointStats

FORCE_PICK_SECONDS = 1.0  # go-zero p2c forcePick: probe an endpoint left unpicked this long
PICK_TRIES = 3  # go-zero p2c pickTimes: draws to find two healthy endpoints


class P2CPicker:
    """Least-loaded of two random endpoints; ignores the key."""

    __slots__ = ("_clock", "_n", "_random", "endpoints")

    def __init__(
        self,
        endpoints: Sequence[EndpointStats],
        *,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.endpoints = tuple(endpoints)
        self._n = len(self.endpoints)
        self._random = rng.random if rng else random.random
        self._clock = clock

    def pick(self, key: str | None = None) -> EndpointStats | None:
        n = self._n
        if n < 2:
            return self.endpoints[0] if n else None
        eps = self.endpoints
        rand = self._random
        for _ in range(PICK_TRIES):
            i = int(rand() * n)
            j = int(rand() * (n - 1))
            if j >= i:
                j += 1
            a = eps[i]
            b = eps[j]
            if a.success >= HEALTHY_SUCCESS and b.success >= HEALTHY_SUCCESS:
                break
        now = self._clock()
        if a.load(now) > b.load(now):
            a, b = b, a
        # a is the cheaper; give the other one its periodic probe (go-zero choose()).
        if now - b.last_pick > FORCE_PICK_SECONDS:
            b.last_pick = now
            return b
        a.last_pick = now
        return a
