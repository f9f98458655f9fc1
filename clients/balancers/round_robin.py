"""Weighted round robin: a precomputed smooth schedule, cycled with one `next()` per pick.

The schedule is nginx's smooth weighted round robin (each step adds every weight to its
running score, picks the highest, subtracts the total from it), so weights 1:3 give
B A B B rather than A B B B: heavy endpoints are interleaved, not bursted. Equal weights
give plain rotation, exactly even over any multiple of N picks. Each picker starts at a
random offset so that a fleet of clients (or every rebuild) does not hammer the first
endpoint together. Hot path: pick() is a single C-level `next()` on itertools.cycle.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator, Sequence

from clients.balancers.endpoint import EndpointStats

# Longest cycle precomputed. Building costs O(length * endpoints) per rebuild; weights
# whose sum (after dividing by their gcd) exceeds it are scaled down proportionally,
# which keeps shares within ~1/MAX_SCHEDULE of exact.
MAX_SCHEDULE = 1024


def smooth_weighted_schedule(weights: Sequence[int]) -> list[int]:
    """Indices into `weights` for one full cycle of nginx smooth weighted round robin."""
    if not weights:
        return []
    if any(w < 1 for w in weights):
        raise ValueError(f"weights must be >= 1, got {list(weights)}")
    g = math.gcd(*weights)
    ws = [w // g for w in weights]
    total = sum(ws)
    if total > MAX_SCHEDULE:
        ws = [max(1, round(w * MAX_SCHEDULE / total)) for w in ws]
        total = sum(ws)
    current = [0] * len(ws)
    schedule: list[int] = []
    for _ in range(total):
        best = 0
        for i, w in enumerate(ws):
            current[i] += w
            if current[i] > current[best]:
                best = i
        current[best] -= total
        schedule.append(best)
    return schedule


class RoundRobinPicker:
    """Cycles through `endpoints` in proportion to their weights; ignores the key."""

    __slots__ = ("_cycle", "endpoints")

    def __init__(
        self, endpoints: Sequence[EndpointStats], *, rng: random.Random | None = None
    ) -> None:
        self.endpoints = tuple(endpoints)
        self._cycle: Iterator[EndpointStats | None]
        if not self.endpoints:
            self._cycle = itertools.repeat(None)
            return
        order = [self.endpoints[i] for i in smooth_weighted_schedule([e.weight for e in endpoints])]
        start = rng.randrange(len(order)) if rng else random.randrange(len(order))
        self._cycle = itertools.cycle(order[start:] + order[:start])

    def pick(self, key: str | None = None) -> EndpointStats | None:
        return next(self._cycle)
