"""Consistent hashing on the request key (account id, symbol): a ring of virtual nodes.

Each endpoint puts VNODES_PER_WEIGHT x weight points on a 64-bit ring at
blake2b("<endpoint key>#<i>"); a request key goes to the first point at or after its
own hash (bisect), wrapping around. An endpoint's points depend only on its own key and
weight, so when an endpoint joins only the keys it now owns move (about 1/N of them),
and when one leaves only its own keys move; every other key keeps its owner. Points are
placed by the endpoint's `key` (instance id), so ownership survives a restart exactly
when the instance id does (stable ids such as "matching-1" give stable shards).

Hot path: pick() is one cached hash, one bisect and one list index. The hash is
stdlib blake2b (unlike `hash()`, not salted per process, so every client agrees on the
owner); it costs ~0.5 µs, so recent keys' hashes are cached.
"""

from __future__ import annotations

import hashlib
import random
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from functools import lru_cache

from clients.balancers.endpoint import EndpointStats

# Points per unit of weight. Envoy's ring_hash minimum ring size is 1024; 256 points
# per endpoint gives a 4-endpoint ring exactly that; an endpoint's share then deviates
# from fair by ~6% (1/sqrt(256)) typically, ~15% at worst. Envoy instead rescales every endpoint's
# count to the ring size, which moves keys between old endpoints on every join; fixed
# per-endpoint counts are what make movement minimal.
VNODES_PER_WEIGHT = 256
# Weights above this are clamped: 32 x 256 = 8192 points already; beyond 32:1 a ring
# only grows its build time (the ring is rebuilt on every membership change).
MAX_RING_WEIGHT = 32
KEY_HASH_CACHE = 16384  # request keys whose hash is memoised (accounts, symbols)


def hash64(text: str) -> int:
    """Stable 64-bit hash of `text` (blake2b, digest_size=8), equal in every process."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


_key_hash = lru_cache(maxsize=KEY_HASH_CACHE)(hash64)


@lru_cache(maxsize=1024)
def _points(endpoint_key: str, count: int) -> tuple[int, ...]:
    # Rebuilds reuse the points of endpoints that did not change.
    return tuple(hash64(f"{endpoint_key}#{i}") for i in range(count))


class RingHashPicker:
    """Maps a request key to its owning endpoint; a None key gets a random endpoint."""

    __slots__ = ("_hashes", "_n", "_owners", "_random", "endpoints")

    def __init__(
        self, endpoints: Sequence[EndpointStats], *, rng: random.Random | None = None
    ) -> None:
        self.endpoints = tuple(endpoints)
        ring: list[tuple[int, str, int]] = []
        for index, ep in enumerate(self.endpoints):
            count = VNODES_PER_WEIGHT * min(ep.weight, MAX_RING_WEIGHT)
            ring.extend([(h, ep.key, index) for h in _points(ep.key, count)])
        ring.sort()  # the key breaks (unlikely) hash ties the same way in every client
        self._hashes = [h for h, _, _ in ring]
        self._owners = [self.endpoints[i] for _, _, i in ring]
        self._n = len(ring)
        self._random = rng.random if rng else random.random

    def __len__(self) -> int:
        """Number of points on the ring."""
        return self._n

    def pick(self, key: str | None = None) -> EndpointStats | None:
        n = self._n
        if not n:
            return None
        if key is None:
            return self._owners[int(self._random() * n)]
        i = bisect_left(self._hashes, _key_hash(key))
        return self._owners[i if i < n else 0]

    def owner(self, key: str) -> str | None:
        """The instance id owning `key`, or None on an empty ring."""
        ep = self.pick(key)
        return ep.key if ep is not None else None


def moved_keys(old: RingHashPicker, new: RingHashPicker, keys: Iterable[str]) -> list[str]:
    """The keys whose owner differs between two rings (e.g. to hand shards over)."""
    return [k for k in keys if old.owner(k) != new.owner(k)]
