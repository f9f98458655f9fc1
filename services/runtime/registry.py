"""Puts a serving process in the registry, and takes it out first when it drains.

Peers find it under /trademesh/services/<service>/<instance-id>; the key lives on
a lease the process keeps alive, so a crash is noticed one TTL later and a
graceful drain deletes the key before anything else stops.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator

from discovery import Endpoint, EtcdClient, Registration
from discovery.endpoint import Protocol
from services.runtime.settings import ServerSettings

_NOT_A_NAME = re.compile(r"[^A-Za-z0-9._-]")
_WILDCARDS = {"0.0.0.0", "::", ""}


def advertised_address(settings: ServerSettings, port: int) -> str:
    if settings.advertise_address:
        return settings.advertise_address
    host = "127.0.0.1" if settings.host in _WILDCARDS else settings.host
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def instance_id(settings: ServerSettings, service: str, port: int) -> str:
    """Stable across restarts on the same port, so consistent hashing gives a
    restarted instance back the keys it owned."""
    return settings.instance_id or _NOT_A_NAME.sub("_", f"{service}-{port}")


@contextlib.asynccontextmanager
async def registered(
    settings: ServerSettings,
    service: str,
    port: int,
    version: str = "",
    protocol: Protocol = "grpc",
) -> AsyncIterator[Registration | None]:
    """Registers for the duration of the block (None without etcd settings);
    `protocol` tells peers how to call it ("grpc", or "rest" for HTTP/JSON)."""
    config = settings.etcd_config()
    if config is None:
        yield None
        return
    endpoint = Endpoint(
        instance_id=instance_id(settings, service, port),
        service=service,
        address=advertised_address(settings, port),
        zone=settings.zone,
        weight=settings.weight,
        version=version,
        protocol=protocol,
    )
    async with EtcdClient(config) as client:
        registration = Registration(
            client, endpoint, ttl=settings.lease_ttl_seconds, prefix=settings.registry_prefix
        )
        await registration.start()
        try:
            yield registration
        finally:
            await registration.deregister()
