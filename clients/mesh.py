"""The mesh of one process: where each service's endpoints come from, and one
MeshChannel per callee.

    async with Mesh.from_etcd(EtcdConfig.from_endpoints("127.0.0.1:2379")) as mesh:
        risk = RiskServiceStub(await mesh.channel(RISK_POLICY))

`Mesh.static({"risk": ["127.0.0.1:50052"]})` does the same without a registry.
Every channel belongs to the event loop that made it.

Channels are plaintext unless `channel_factory` says otherwise; with mutual TLS
(`channel_factory=SecureChannels(TlsFiles.of("certs", "client"))`, clients/tls.py)
each service's endpoints are dialled with that service's expected server name, and
renewed certificates rebuild every endpoint's channel.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Protocol, runtime_checkable

from clients.channel import MeshChannel
from clients.channel_options import ChannelFactory, plaintext_channel
from clients.endpoint_pool import EndpointPool, EndpointSource
from clients.policy import ServicePolicy
from clients.static import StaticEndpoints
from discovery import DEFAULT_PREFIX, EtcdClient, EtcdConfig, ServiceWatcher

SourceFactory = Callable[[str], Awaitable[EndpointSource]]

__all__ = ["ChannelFactory", "ChannelProvider", "Channels", "Mesh", "SourceFactory", "etcd_sources"]


@runtime_checkable
class ChannelProvider(Protocol):
    """Channel factories that depend on the callee and can be renewed (mTLS:
    clients.tls.SecureChannels)."""

    def for_service(self, service: str) -> ChannelFactory: ...

    async def watch(self, on_renewal: Callable[[], None]) -> None: ...


Channels = ChannelFactory | ChannelProvider


def etcd_sources(
    config: EtcdConfig, *, prefix: str = DEFAULT_PREFIX
) -> tuple[SourceFactory, Callable[[], Awaitable[None]]]:
    """A watcher per service on one etcd client, and what closes them all (the
    gRPC mesh and the REST one, clients/http_pool.py, find peers the same way)."""
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

    return watch, close


class Mesh:
    def __init__(
        self,
        sources: SourceFactory,
        *,
        channel_factory: Channels = plaintext_channel,
        on_close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._sources_for = sources
        self._channel_factory = channel_factory
        self._on_close = on_close
        self._sources: dict[str, EndpointSource] = {}
        self._channels: dict[str, MeshChannel] = {}
        self._renewals: asyncio.Task[None] | None = None

    @classmethod
    def from_etcd(
        cls,
        config: EtcdConfig,
        *,
        prefix: str = DEFAULT_PREFIX,
        channel_factory: Channels = plaintext_channel,
    ) -> Mesh:
        watch, close = etcd_sources(config, prefix=prefix)
        return cls(watch, channel_factory=channel_factory, on_close=close)

    @classmethod
    def static(
        cls,
        addresses: Mapping[str, Sequence[str]],
        *,
        channel_factory: Channels = plaintext_channel,
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
            source = await self.source(policy.service)
            pool = EndpointPool(policy, source, self._factory_for(policy.service))
            found = self._channels[policy.service] = MeshChannel(pool)
        return found

    @property
    def open_channels(self) -> Mapping[str, MeshChannel]:
        """The channel of every service called so far, by service (a live view)."""
        return MappingProxyType(self._channels)

    def _factory_for(self, service: str) -> ChannelFactory:
        provider = self._channel_factory
        if not isinstance(provider, ChannelProvider):
            return provider
        if self._renewals is None:
            self._renewals = asyncio.get_running_loop().create_task(
                provider.watch(self._renew), name="mesh credential renewals"
            )
        return provider.for_service(service)

    def _renew(self) -> None:
        """New credentials: every endpoint gets a new channel; calls in flight finish."""
        for channel in self._channels.values():
            channel.pool.renew_channels()

    async def close(self) -> None:
        renewals, self._renewals = self._renewals, None
        if renewals is not None:
            renewals.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewals
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
