"""The process's mesh: peers found in etcd, or at the static addresses given."""

from __future__ import annotations

from collections.abc import Mapping

from clients.http_pool import HttpMesh
from clients.mesh import Mesh
from services.runtime.settings import ServerSettings
from services.runtime.telemetry.mesh_metrics import watch_mesh
from services.runtime.tls import mesh_channels, tls_files


def open_mesh(settings: ServerSettings, static: Mapping[str, str]) -> Mesh:
    """With etcd settings every peer is discovered; otherwise `static` maps a
    registry name to "host:port[,host:port...]" (the --<peer>-address flags).

    Peers are called over mTLS as this process's identity (checking each peer's),
    or plaintext with --plaintext. The mesh shows in the process's /metrics."""
    channels = mesh_channels(settings)
    config = settings.etcd_config()
    if config is not None:
        mesh = Mesh.from_etcd(config, prefix=settings.registry_prefix, channel_factory=channels)
    else:
        mesh = Mesh.static(_addresses(static), channel_factory=channels)
    return watch_mesh(mesh)


def open_http_mesh(settings: ServerSettings, static: Mapping[str, str]) -> HttpMesh:
    """open_mesh() for the REST variant: peers registered with protocol "rest" (or
    at the static addresses), called over HTTPS as this process's identity, or
    plain HTTP with --plaintext."""
    tls = None if settings.plaintext else tls_files(settings)
    config = settings.etcd_config()
    if config is not None:
        return HttpMesh.from_etcd(config, prefix=settings.registry_prefix, tls=tls)
    return HttpMesh.static(_addresses(static), tls=tls)


def _addresses(static: Mapping[str, str]) -> dict[str, list[str]]:
    return {
        name: [address.strip() for address in addresses.split(",") if address.strip()]
        for name, addresses in static.items()
    }
