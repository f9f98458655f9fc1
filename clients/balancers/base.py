"""The picker contract between the mesh channel and its load-balancing policies.

The channel owns the live `EndpointStats` objects and rebuilds a picker from the usable
ones whenever that set changes (join, leave, health, ejection). A picker is therefore
immutable over its endpoint list, cheap to build, and its `pick()` is on the hot path
of every RPC: it must not allocate or lock (one event loop owns it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from clients.balancers.endpoint import EndpointStats


class Picker(Protocol):
    """Chooses the endpoint for one call."""

    def pick(self, key: str | None = None) -> EndpointStats | None:
        """The endpoint for this call, or None when the picker has no endpoint.

        `key` is the request's affinity key (account id, symbol); only hashing
        policies use it, the others ignore it.
        """
        ...


PickerFactory = Callable[[Sequence[EndpointStats]], Picker]
