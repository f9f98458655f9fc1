"""Load-balancing policies for the mesh channel: pure pickers over `EndpointStats`.

`POLICIES` maps a policy name from the client settings to its `PickerFactory`.
"""

from __future__ import annotations

from clients.balancers.base import Picker, PickerFactory
from clients.balancers.endpoint import EndpointStats
from clients.balancers.p2c import P2CPicker
from clients.balancers.ring_hash import RingHashPicker
from clients.balancers.round_robin import RoundRobinPicker

POLICIES: dict[str, PickerFactory] = {
    "round_robin": RoundRobinPicker,
    "p2c": P2CPicker,  # go-zero's default (p2c_ewma), Linkerd's only policy
    "ring_hash": RingHashPicker,
}

__all__ = [
    "POLICIES",
    "EndpointStats",
    "P2CPicker",
    "Picker",
    "PickerFactory",
    "RingHashPicker",
    "RoundRobinPicker",
]
