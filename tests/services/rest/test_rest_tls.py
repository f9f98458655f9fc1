"""REST over mutual TLS: the same certificates and the same authorization policy
as gRPC. No client certificate, no connection; a mesh certificate gets in, and
the policy decides per route by the identity it names."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from clients.tls import TlsFiles, server_name
from services.risk.app import RiskSettings
from services.risk.rest_app import build_rest_services
from services.runtime.rest.server import serving_rest
from services.runtime.rest.tls import client_context
from tests.services.runtime.tls_support import make_pki

from .rest_support import call

ORDER = {
    "reservation_id": "r-1",
    "account_id": "acct-1",
    "symbol": "AAPL",
    "side": "SIDE_BUY",
    "quantity": 1,
    "price": 15_000,
}


@pytest.fixture
async def risk_tls(tmp_path: Path) -> AsyncIterator[tuple[Path, str]]:
    pki = make_pki(tmp_path / "pki", identities=["stranger"])
    async with serving_rest(build_rest_services, RiskSettings(port=0, tls_dir=pki)) as address:
        yield pki, f"https://{address}"


def as_identity(pki: Path, identity: str) -> aiohttp.ClientSession:
    context = client_context(TlsFiles.of(pki, identity))
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context))


async def test_a_client_without_a_certificate_is_refused(risk_tls) -> None:
    pki, base = risk_tls
    context = ssl.create_default_context(cafile=str(pki / "ca.pem"))  # trusts, presents nothing
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:
        with pytest.raises(aiohttp.ClientError):
            await call(session, "GET", f"{base}/healthz", server_hostname=server_name("risk"))


async def test_a_mesh_identity_allowed_by_the_policy_gets_in(risk_tls) -> None:
    pki, base = risk_tls
    async with as_identity(pki, "orders") as session:
        hostname = server_name("risk")
        status, _, body = await call(
            session, "POST", f"{base}/v1/reservations", ORDER, server_hostname=hostname
        )
        assert status == 200, body
        status, _, body = await call(
            session, "GET", f"{base}/v1/accounts/acct-1", server_hostname=hostname
        )
        assert (status, body["account_id"]) == (200, "acct-1")


async def test_the_policy_decides_per_route_by_identity(risk_tls) -> None:
    pki, base = risk_tls
    hostname = server_name("risk")
    async with as_identity(pki, "client") as session:
        # The external client may read accounts but not reserve (only orders may).
        status, content_type, body = await call(
            session, "POST", f"{base}/v1/reservations", ORDER, server_hostname=hostname
        )
        assert (status, content_type) == (403, "application/problem+json")
        assert body["code"] == "PERMISSION_DENIED"
        assert "'client'" in body["detail"]
        assert "trading.v1.RiskService/Reserve" in body["detail"]
        status, _, body = await call(
            session, "GET", f"{base}/v1/accounts/nobody", server_hostname=hostname
        )
        assert (status, body["code"]) == (404, "NOT_FOUND")  # allowed, then not found
        status, _, body = await call(session, "GET", f"{base}/healthz", server_hostname=hostname)
        assert (status, body) == (200, {"status": "SERVING"})  # probes are open
    async with as_identity(pki, "stranger") as session:
        status, _, body = await call(
            session, "GET", f"{base}/v1/accounts/nobody", server_hostname=hostname
        )
        assert (status, body["code"]) == (403, "PERMISSION_DENIED")
        assert "'stranger'" in body["detail"]


async def test_the_client_checks_it_reached_the_service_it_meant(risk_tls) -> None:
    pki, base = risk_tls
    async with as_identity(pki, "orders") as session:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await call(session, "GET", f"{base}/healthz", server_hostname=server_name("matching"))
