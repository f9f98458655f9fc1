"""Outlier ejection, as Envoy's outlier_detection consecutive_5xx: an endpoint that fails
`consecutive_failures` calls in a row is taken out of the picker for a while.

- The n-th ejection lasts base_ejection_seconds * n, capped at max_ejection_seconds.
- Any success resets the consecutive count.
- At most max_ejection_percent of known endpoints are ejected at once (at least one if
  the percent is > 0, as Envoy does), and never the last one left: with every endpoint
  failing, sending to a bad one beats failing every call locally.
- Ejections end by the clock: `refresh()` (O(1) when nothing is due, so the channel may
  call it before each pick, or on a timer as Envoy's 10 s interval) returns them.
- The multiplier decays, as Envoy's: every full base period an endpoint spends back in
  service takes one off its ejection count, so a healed endpoint is not punished forever.

`record()` and `refresh()` return True when the ejected set changed: the channel then
rebuilds its picker without (or with) those endpoints. Which calls count as failures is
the channel's choice: transport failures (UNAVAILABLE, connection errors, deadline
exceeded), not business errors. Lock-free: owned by one event loop.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable

CONSECUTIVE_FAILURES = 5  # Envoy outlier_detection.consecutive_5xx default
BASE_EJECTION_SECONDS = 30.0  # Envoy base_ejection_time default
MAX_EJECTION_SECONDS = 300.0  # Envoy max_ejection_time default
# Envoy's default is 10%; trading fleets here are 2-5 instances per service, where 10%
# means "one", so 50% lets 2 of 4 go while keeping half the capacity serving.
MAX_EJECTION_PERCENT = 50.0


class _Host:
    __slots__ = ("ejections", "failures", "returned")

    def __init__(self) -> None:
        self.failures = 0  # consecutive failures
        self.ejections = 0  # ejection multiplier, before decay
        self.returned = 0.0  # when its last ejection ended


class OutlierDetector:
    """Tracks consecutive failures per endpoint key and ejects the outliers."""

    __slots__ = (
        "_clock",
        "_ejected",
        "_hosts",
        "_next_expiry",
        "base_ejection_seconds",
        "consecutive_failures",
        "max_ejection_percent",
        "max_ejection_seconds",
    )

    def __init__(
        self,
        consecutive_failures: int = CONSECUTIVE_FAILURES,
        base_ejection_seconds: float = BASE_EJECTION_SECONDS,
        max_ejection_seconds: float = MAX_EJECTION_SECONDS,
        max_ejection_percent: float = MAX_EJECTION_PERCENT,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if consecutive_failures < 1 or base_ejection_seconds <= 0:
            raise ValueError(
                "need consecutive_failures >= 1 and base_ejection_seconds > 0; "
                "to disable ejection set max_ejection_percent=0"
            )
        if not 0 <= max_ejection_percent <= 100:
            raise ValueError(
                f"max_ejection_percent must be in [0, 100], got {max_ejection_percent}"
            )
        self.consecutive_failures = consecutive_failures
        self.base_ejection_seconds = base_ejection_seconds
        self.max_ejection_seconds = max(max_ejection_seconds, base_ejection_seconds)
        self.max_ejection_percent = max_ejection_percent
        self._clock = clock
        self._hosts: dict[str, _Host] = {}
        self._ejected: dict[str, float] = {}  # key -> ejected until (clock)
        self._next_expiry = math.inf

    def set_endpoints(self, keys: Iterable[str]) -> bool:
        """Align with the registry: forget departed keys, know new ones (they count in the
        max_ejection_percent base). True if an ejected endpoint left."""
        keep = set(keys)
        changed = False
        for key in [k for k in self._hosts if k not in keep]:
            del self._hosts[key]
            if self._ejected.pop(key, None) is not None:
                changed = True
        for key in keep:
            if key not in self._hosts:
                self._hosts[key] = _Host()
        if changed:
            self._next_expiry = min(self._ejected.values(), default=math.inf)
        return changed

    def record(self, key: str, ok: bool) -> bool:
        """Count one call's outcome for `key`; True if this ejected it. Hot path."""
        host = self._hosts.get(key)
        if host is None:
            host = self._hosts[key] = _Host()
        if ok:
            host.failures = 0
            return False
        host.failures += 1
        if host.failures < self.consecutive_failures or key in self._ejected:
            return False
        if not self._may_eject_one_more():
            return False  # stays over the threshold: the next failure tries again
        now = self._clock()
        host.ejections = self._multiplier(host, now) + 1
        host.failures = 0
        until = now + min(self.base_ejection_seconds * host.ejections, self.max_ejection_seconds)
        self._ejected[key] = until
        if until < self._next_expiry:
            self._next_expiry = until
        return True

    def refresh(self) -> bool:
        """Return the endpoints whose ejection is over; True if any did."""
        now = self._clock()
        if now < self._next_expiry:
            return False
        due = [k for k, until in self._ejected.items() if until <= now]
        for key in due:
            until = self._ejected.pop(key)
            host = self._hosts[key]
            host.returned = until  # decay counts from the end of the ejection
            host.failures = 0
        self._next_expiry = min(self._ejected.values(), default=math.inf)
        return bool(due)

    def is_ejected(self, key: str) -> bool:
        return key in self._ejected

    def ejected(self) -> set[str]:
        return set(self._ejected)

    def ejection_multiplier(self, key: str) -> int:
        """How many ejections `key` would carry into its next one (after decay)."""
        host = self._hosts.get(key)
        if host is None:
            return 0
        if key in self._ejected:
            return host.ejections
        return self._multiplier(host, self._clock())

    def _multiplier(self, host: _Host, now: float) -> int:
        if not host.ejections:
            return 0
        periods = int((now - host.returned) // self.base_ejection_seconds)
        return max(0, host.ejections - periods)

    def _may_eject_one_more(self) -> bool:
        total = len(self._hosts)
        ejected = len(self._ejected)
        if self.max_ejection_percent <= 0 or total - ejected <= 1:
            return False
        allowed = max(1, int(total * self.max_ejection_percent / 100 + 1e-9))
        return ejected < allowed
