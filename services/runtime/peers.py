"""The process's mesh: peers found in etcd, or at the static addresses given."""

from __future__ import annotations

from collections.abc import Mapping

from clients.mesh import Mesh
from services.runtime.settings import ServerSettings


def open_mesh(settings: ServerSettings, static: Mapping[str, str]) -> Mesh:
    """With etcd settings every peer is discovered; otherwise `static` maps a
    registry name to "host:port[,host:port...]" (the --<peer>-address flags)."""
    config = settings.etcd_config()
    if config is not None:
        return Mesh.from_etcd(config, prefix=settings.registry_prefix)
    return Mesh.static(
        {
            name: [address.strip() for address in addresses.split(",") if address.strip()]
            for name, addresses in static.items()
        }
    )
