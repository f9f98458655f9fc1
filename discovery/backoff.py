"""Capped exponential backoff with jitter, for reconnecting to etcd and re-registering."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

# First retry after 100 ms: an etcd member restart or leader change often heals that fast.
INITIAL_DELAY = 0.1
# The cap bounds how long after etcd returns an instance stays unregistered or a watcher
# stays stale; 2 s is well under the 5 s lease TTL, and one retry per 2 s per process is
# nothing for etcd.
MAX_DELAY = 2.0
MULTIPLIER = 2.0
# +/-20 % so that the instances that lost etcd together do not all return in the same tick.
JITTER = 0.2


@dataclass
class Backoff:
    """Delays of initial, initial*m, ... up to maximum, each spread by +/-jitter."""

    initial: float = INITIAL_DELAY
    maximum: float = MAX_DELAY
    multiplier: float = MULTIPLIER
    jitter: float = JITTER
    _attempt: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if not 0 < self.initial <= self.maximum or self.multiplier < 1 or not 0 <= self.jitter < 1:
            raise ValueError(
                "backoff needs 0 < initial <= maximum, multiplier >= 1, 0 <= jitter < 1"
            )

    def next(self) -> float:
        """The delay before the next attempt; each call moves one step up."""
        base = min(self.maximum, self.initial * self.multiplier ** min(self._attempt, 64))
        self._attempt += 1
        return base * random.uniform(1 - self.jitter, 1 + self.jitter)

    def reset(self) -> None:
        """After a success the next failure starts again from `initial`."""
        self._attempt = 0
