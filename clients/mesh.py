"""The mesh of one process: where each service's endpoints come from, and one
MeshChannel per callee.

    async with Mesh.from_etcd(EtcdConfig.from_endpoints("127.0.0.1:2379")) as mesh:
        risk = RiskServiceStub(await mesh.channel(RISK_POLICY))

`Mesh.static({"risk": ["127.0.0.1:50052"]})` does the same without a registry.
Every channel belongs to the event loop that made it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import grpc

from clients.channel import MeshChannel
from clients.channel_options import plaintext_channel
from clients.endpoint_pool import EndpointPool, EndpointSource
from clients.policy import ServicePolicy
from clients.static import StaticEndpoints
from discovery import DEFAULT_PREFIX, EtcdClient, EtcdConfig, ServiceWatcher

SourceFactory = Callable[[str], Awaitable[EndpointSource]]
ChannelFactory = Callable[[str, Sequence[tuple[str, Any]]], grpc.aio.Channel]


class Mesh:
    def __init__(
        self,
        sources: SourceFactory,
        *,
        channel_factory: ChannelFactory = plaintext_channel,
        on_close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._sources_for = sources
        self._channel_factory = channel_factory
        self._on_close = on_close
        self._sources: dict[str, EndpointSource] = {}
        self._channels: dict[str, MeshChannel] = {}

    @classmethod
    def from_etcd(
        cls,
        config: EtcdConfig,
        *,
        prefix: str = DEFAULT_PREFIX,
        channel_factory: ChannelFactory = plaintext_channel,
    ) -> Mesh:
        client = EtcdClient(config)
        watchers: list[ServiceWatcher] = []

        async def watch(service: str) -> EndpointSource:
            watcher = ServiceWatcher(client, service, prefix=prefix)
            watchers.append(watcher)
            await watcher.start()
            return watcher

        async def close() -> None:
            for watcher in watchers:
                await watcher.close()
            await client.close()

        return cls(watch, channel_factory=channel_factory, on_close=close)

    @classmethod
    def static(
        cls,
        addresses: Mapping[str, Sequence[str]],
        *,
        channel_factory: ChannelFactory = plaintext_channel,
    ) -> Mesh:
        async def fixed(service: str) -> EndpointSource:
            if service not in addresses:
                raise KeyError(f"no addresses given for service {service!r}")
            return StaticEndpoints(service, addresses[service])

        return cls(fixed, channel_factory=channel_factory)

    async def source(self, service: str) -> EndpointSource:
        """The endpoint source of `service` (one per service, shared)."""
        found = self._sources.get(service)
        if found is None:
            found = self._sources[service] = await self._sources_for(service)
        return found

    async def channel(self, policy: ServicePolicy) -> MeshChannel:
        """The channel to `policy.service`; the first call for a service fixes its policy."""
        found = self._channels.get(policy.service)
        if found is None:
            pool = EndpointPool(policy, await self.source(policy.service), self._channel_factory)
            found = self._channels[policy.service] = MeshChannel(pool)
        return found

    async def close(self) -> None:
        channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            with contextlib.suppress(Exception):
                await channel.close()
        if self._on_close is not None:
            await self._on_close()

    async def __aenter__(self) -> Mesh:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
