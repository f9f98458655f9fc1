"""The live endpoints of one service and the picker over the usable ones.

Fed by an endpoint source (discovery.ServiceWatcher, or clients.static for a fixed
list), the pool keeps one grpc.aio channel per endpoint, follows each endpoint's
health, applies outlier ejection, and rebuilds the picker whenever the usable set
changes. Picking is the hot path; everything else happens on changes only.

When the mesh's TLS certificate is renewed, renew_channels() gives every endpoint
a new channel (grpc channels cannot change credentials); the old channels are
retired: calls and streams on them go on, and they close after a while.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Protocol

import grpc

from clients.balancers import POLICIES, EndpointStats, Picker
from clients.health_watch import watch_health
from clients.policy import ServicePolicy
from clients.resilience.outlier import OutlierDetector
from discovery import Endpoint, EndpointSet

_LOGGER = logging.getLogger(__name__)

# How long a channel replaced by renew_channels() stays open for the streams still
# on it (unary calls finish in seconds). A longer stream is cancelled then and its
# client resubscribes, as after any server drain.
RETIRED_CHANNEL_SECONDS = 600.0

# Registry weights are in hundredths of a default endpoint (100); pickers work in
# small integers, so a default endpoint weighs 4 and a share of 25 is the grain.
WEIGHT_GRAIN = 25


class EndpointSource(Protocol):
    service: str

    @property
    def current(self) -> EndpointSet: ...

    def subscribe(self, callback: Callable[[EndpointSet], None]) -> Callable[[], None]: ...


class Member:
    """One endpoint: its stats (read by pickers), channel and health."""

    __slots__ = ("calls", "channel", "endpoint", "health_task", "serving", "stats")

    def __init__(self, endpoint: Endpoint, channel: grpc.aio.Channel) -> None:
        self.endpoint = endpoint
        self.channel = channel
        self.stats = EndpointStats(
            endpoint.instance_id,
            endpoint.address,
            max(1, round(endpoint.weight / WEIGHT_GRAIN)),
            endpoint.zone,
        )
        # Unknown until the first health answer: usable, so a fresh endpoint is
        # not refused while its Watch is on its way (a dead one fails fast and is
        # retried elsewhere).
        self.serving = True
        self.health_task: asyncio.Task[None] | None = None
        self.calls: dict[str, object] = {}  # method -> multicallable on this channel


class EndpointPool:
    """Endpoints of `policy.service`; `pick(key)` chooses one for a call."""

    def __init__(
        self,
        policy: ServicePolicy,
        source: EndpointSource,
        channel_factory: Callable[[str, Sequence[tuple[str, object]]], grpc.aio.Channel],
    ) -> None:
        self.policy = policy
        self._source = source
        self._channel_factory = channel_factory
        self._factory = POLICIES[policy.balancer]
        self.members: dict[str, Member] = {}
        self.outliers = OutlierDetector(
            consecutive_failures=policy.consecutive_failures,
            base_ejection_seconds=policy.base_ejection_seconds,
            max_ejection_percent=policy.max_ejection_percent,
        )
        self.picker: Picker = self._factory([])
        self.panic = False
        self._retired: dict[asyncio.Task[None], Member] = {}
        self._listeners: list[Callable[[EndpointPool], None]] = []
        self._unsubscribe = source.subscribe(self._on_set)
        self._on_set(source.current)

    # -- hot path -------------------------------------------------------------

    def pick(self, key: str | None, avoid: str | None = None) -> Member | None:
        """The member for a call; `avoid` (the one that just failed) is skipped
        when another is usable."""
        if self.outliers.refresh():
            self._rebuild()
        stats = self.picker.pick(key)
        if stats is None:
            return None
        if stats.key == avoid and len(self.members) > 1:
            for _ in range(3):  # a different one, if the picker offers it
                other = self.picker.pick(None)
                if other is not None and other.key != avoid:
                    stats = other
                    break
        return self.members.get(stats.key)

    def record(self, member: Member, ok: bool) -> None:
        if self.outliers.record(member.endpoint.instance_id, ok):
            ejected = member.endpoint.instance_id in self.outliers.ejected()
            _LOGGER.warning(
                "%s endpoint %s (%s) %s",
                self.policy.service,
                member.endpoint.instance_id,
                member.endpoint.address,
                "ejected after consecutive failures" if ejected else "back from ejection",
            )
            self._rebuild()

    # -- changes --------------------------------------------------------------

    def on_change(self, listener: Callable[[EndpointPool], None]) -> None:
        """Calls `listener(pool)` after every rebuild (membership, health, ejection)."""
        self._listeners.append(listener)

    def usable(self) -> list[Member]:
        ejected = self.outliers.ejected()
        return [
            m for m in self.members.values() if m.serving and m.endpoint.instance_id not in ejected
        ]

    def _on_set(self, endpoint_set: EndpointSet) -> None:
        wanted = {e.instance_id: e for e in endpoint_set if e.protocol == "grpc"}
        for instance_id in [i for i in self.members if i not in wanted]:
            self._drop(self.members.pop(instance_id))
        for instance_id, endpoint in wanted.items():
            member = self.members.get(instance_id)
            if member is not None and member.endpoint == endpoint:
                continue
            if member is not None:  # moved or re-weighted: start afresh
                self._drop(member)
            self.members[instance_id] = self._join(endpoint)
        self.outliers.set_endpoints(self.members)
        self._rebuild()

    def open_channel(self, address: str) -> grpc.aio.Channel:
        """A channel made like the members' (credentials, server name, options),
        for callers that hold a connection of their own to one endpoint."""
        return self._channel_factory(address, self.policy.channel_options)

    def renew_channels(self) -> None:
        """A new channel for every endpoint (renewed credentials); see the module doc."""
        for instance_id, member in list(self.members.items()):
            self.members[instance_id] = self._join(member.endpoint)
            if member.health_task is not None:
                member.health_task.cancel()
            task = asyncio.get_running_loop().create_task(self._close_retired(member))
            self._retired[task] = member
            task.add_done_callback(self._retired.pop)
        self._rebuild()

    async def _close_retired(self, member: Member) -> None:
        await asyncio.sleep(RETIRED_CHANNEL_SECONDS)
        await _close_when_idle(member)

    def _join(self, endpoint: Endpoint) -> Member:
        channel = self.open_channel(endpoint.address)
        member = Member(endpoint, channel)

        def on_health(serving: bool) -> None:
            if member.serving != serving and self.members.get(endpoint.instance_id) is member:
                member.serving = serving
                _LOGGER.info(
                    "%s endpoint %s (%s) %s",
                    self.policy.service,
                    endpoint.instance_id,
                    endpoint.address,
                    "serving" if serving else "not serving",
                )
                self._rebuild()

        member.health_task = asyncio.get_running_loop().create_task(
            watch_health(channel, self.policy.health_service, on_health),
            name=f"health {self.policy.service}/{endpoint.instance_id}",
        )
        return member

    def _drop(self, member: Member) -> None:
        if member.health_task is not None:
            member.health_task.cancel()
        # Calls in flight on it finish (or fail) on their own; close when idle. The
        # task is held (the loop keeps only weak references) and close() ends it.
        task = asyncio.get_running_loop().create_task(_close_when_idle(member))
        self._retired[task] = member
        task.add_done_callback(self._retired.pop)

    def _rebuild(self) -> None:
        usable = self.usable()
        panic = not usable and bool(self.members)
        if panic != self.panic:
            self.panic = panic
            if panic:
                _LOGGER.warning(
                    "%s: no endpoint is healthy; spreading calls over all %d (panic mode)",
                    self.policy.service,
                    len(self.members),
                )
        chosen = [m.stats for m in (self.members.values() if panic else usable)]
        self.picker = self._factory(chosen)
        for listener in list(self._listeners):
            listener(self)

    async def close(self) -> None:
        self._unsubscribe()
        members, self.members = list(self.members.values()), {}
        for task, member in list(self._retired.items()):
            task.cancel()
            members.append(member)
        for member in members:
            if member.health_task is not None:
                member.health_task.cancel()
        for member in members:
            if member.health_task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await member.health_task
            await member.channel.close()


async def _close_when_idle(member: Member, limit: float = 30.0) -> None:
    waited = 0.0
    while member.stats.outstanding and waited < limit:
        await asyncio.sleep(0.1)
        waited += 0.1
    if member.health_task is not None:
        with contextlib.suppress(asyncio.CancelledError):
            await member.health_task
    await member.channel.close()
