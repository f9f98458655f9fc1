"""mTLS test helpers: a mesh PKI in a temporary folder, servers and clients on it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import grpc

from clients.tls import SecureChannels, TlsFiles
from services.risk import app as risk_app
from services.runtime.certs import CertificateAuthority, ensure_certs
from services.runtime.server import ServiceBinding, serving
from services.runtime.settings import ServerSettings


def make_pki(folder: Path, identities: Sequence[str] = ()) -> Path:
    """The CA and every mesh identity (plus `identities`) in `folder`."""
    ensure_certs(folder)
    ca = CertificateAuthority.load(folder)
    for identity in identities:
        ca.issue_to(folder, identity)
    return folder


def channel_as(pki: Path, identity: str, address: str, service: str = "risk") -> grpc.aio.Channel:
    """A channel to `address` presenting `identity`'s certificate, expecting `service`."""
    return SecureChannels(TlsFiles.of(pki, identity)).for_service(service)(address, ())


def write_policy(folder: Path, allow: Mapping[str, list[str]]) -> Path:
    path = folder / "policy.json"
    path.write_text(json.dumps({"open": ["grpc.health.v1.Health"], "allow": allow}))
    return path


@asynccontextmanager
async def risk_over_tls(pki: Path, **settings: object) -> AsyncIterator[str]:
    """RiskService in this loop, serving mTLS as `risk`; yields its address."""
    config = risk_app.RiskSettings(port=0, tls_dir=pki, **settings)  # type: ignore[arg-type]
    async with serving(risk_app.build_services, config) as address:
        yield address


def bytes_method(service: str, name: str, behavior: object) -> ServiceBinding:
    """A one-method service on raw bytes (no proto needed)."""
    handler = grpc.method_handlers_generic_handler(
        service, {name: grpc.unary_unary_rpc_method_handler(behavior)}
    )
    return ServiceBinding(service, handler, lambda h, server: server.add_generic_rpc_handlers((h,)))


@asynccontextmanager
async def bytes_server_over_tls(
    pki: Path, binding: ServiceBinding, policy: Path, identity: str = "risk"
) -> AsyncIterator[str]:
    settings = ServerSettings(port=0, tls_dir=pki, identity=identity, authz_policy=policy)
    async with serving([binding], settings) as address:
        yield address
