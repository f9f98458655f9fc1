"""A sliding window of two integer counters in time buckets, with O(1) running totals.

Shared by the retry budget (requests, retries) and the adaptive throttle (requests,
accepts), like go-zero's collection.RollingWindow: a ring of buckets, the ones that fell
out of the window are cleared lazily when the clock is next read. Hot path: no
allocation; the common case (same bucket as last time) is one division and a compare.
"""

from __future__ import annotations

from collections.abc import Callable


class RollingPair:
    """Two counters (`first`, `second`) summed over the last `window_seconds`."""

    __slots__ = ("_a", "_b", "_clock", "_last", "_n", "_width", "first", "second")

    def __init__(self, window_seconds: float, buckets: int, clock: Callable[[], float]) -> None:
        if window_seconds <= 0 or buckets < 1:
            raise ValueError(
                f"need window_seconds > 0 and buckets >= 1, got {window_seconds}, {buckets}"
            )
        self._n = buckets
        self._width = window_seconds / buckets
        self._a = [0] * buckets
        self._b = [0] * buckets
        self._clock = clock
        self._last = int(clock() // self._width)
        self.first = 0  # totals over the window, valid after roll()
        self.second = 0

    def roll(self) -> int:
        """Drop buckets that left the window; returns the current bucket's slot."""
        idx = int(self._clock() // self._width)
        last = self._last
        n = self._n
        if idx != last:
            if idx - last >= n:
                for i in range(n):
                    self._a[i] = 0
                    self._b[i] = 0
                self.first = self.second = 0
            else:
                a, b = self._a, self._b
                for k in range(last + 1, idx + 1):
                    s = k % n
                    self.first -= a[s]
                    self.second -= b[s]
                    a[s] = 0
                    b[s] = 0
            self._last = idx
        return idx % n

    def add(self, first: int, second: int) -> None:
        s = self.roll()
        self._a[s] += first
        self._b[s] += second
        self.first += first
        self.second += second
