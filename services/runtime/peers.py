"""The process's mesh: peers found in etcd, or at the static addresses given."""

from __future__ import annotations

from collections.abc import Mapping

from clients.mesh import Mesh
from services.runtime.settings import ServerSettings
from services.runtime.telemetry.mesh_metrics import watch_mesh
from services.runtime.tls import mesh_channels


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
        mesh = Mesh.static(
            {
                name: [address.strip() for address in addresses.split(",") if address.strip()]
                for name, addresses in static.items()
            },
            channel_factory=channels,
        )
    return watch_mesh(mesh)
