"""The REST mesh client against real uvicorn servers on loopback: ring-hash
affinity (the gRPC mesh's ring), skipping a stopped endpoint, mutual TLS."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from fastapi import APIRouter

from clients.balancers import EndpointStats, RingHashPicker
from clients.endpoint_pool import WEIGHT_GRAIN
from clients.http_pool import HttpMesh, HttpUnreachable
from clients.tls import TlsFiles
from discovery.endpoint import DEFAULT_WEIGHT
from services.runtime.rest.responses import JsonResponse
from services.runtime.rest.server import RestBinding, serving_rest
from services.runtime.settings import ServerSettings
from tests.services.runtime.tls_support import make_pki

ACCOUNTS = [f"acct-{i}" for i in range(40)]


def echo(label: str, served: list[str] | None = None) -> RestBinding:
    """RiskService's GetAccount route, answering which server it is."""
    router = APIRouter()

    @router.get("/v1/accounts/{account_id}", name="GetAccount")
    async def get_account(account_id: str) -> JsonResponse:
        if served is not None:
            served.append(account_id)
        return JsonResponse({"account_id": account_id, "served_by": label})

    return RestBinding("trading.v1.RiskService", router)


async def served_by(mesh: HttpMesh, account: str, service: str = "risk") -> str:
    pool = await mesh.pool(service, balancer="ring_hash", timeout_seconds=2.0)
    status, body = await pool.request("GET", f"/v1/accounts/{account}", key=account)
    assert status == 200, body
    return orjson.loads(body)["served_by"]


async def test_a_key_sticks_to_the_owner_the_grpc_ring_gives_it() -> None:
    async with (
        serving_rest([echo("first")]) as first,
        serving_rest([echo("second")]) as second,
        HttpMesh.static({"risk": [first, second]}) as mesh,
    ):
        owners = {account: await served_by(mesh, account) for account in ACCOUNTS}
        again = {account: await served_by(mesh, account) for account in ACCOUNTS}

    assert again == owners
    assert set(owners.values()) == {"first", "second"}  # both own some accounts
    # The gRPC mesh's ring over the same instance ids (clients/static.py names them).
    weight = DEFAULT_WEIGHT // WEIGHT_GRAIN  # a default endpoint, as EndpointPool weighs it
    ring = RingHashPicker(
        [EndpointStats("risk-0", first, weight), EndpointStats("risk-1", second, weight)]
    )
    label = {"risk-0": "first", "risk-1": "second"}
    assert owners == {account: label[ring.owner(account)] for account in ACCOUNTS}


async def test_a_stopped_endpoint_is_skipped_after_its_first_refused_connection() -> None:
    live_calls: list[str] = []
    async with serving_rest([echo("live", live_calls)]) as live:
        stack = contextlib.AsyncExitStack()
        doomed = await stack.enter_async_context(serving_rest([echo("doomed")]))
        async with HttpMesh.static({"risk": [live, doomed]}) as mesh:
            pool = await mesh.pool("risk", balancer="ring_hash")
            owned = [a for a in ACCOUNTS if await served_by(mesh, a) == "doomed"]
            assert owned
            await stack.aclose()  # the server stops: its port refuses connections

            # The call fails over to the live endpoint, and the dead one leaves the ring.
            assert await served_by(mesh, owned[0]) == "live"
            assert [m.endpoint.address for m in pool.usable()] == [live]
            before = len(live_calls)
            assert {await served_by(mesh, a) for a in owned} == {"live"}
            assert len(live_calls) == before + len(owned)  # one attempt each, no detour


async def test_no_endpoint_is_an_unreachable_service() -> None:
    async with HttpMesh.static({"risk": []}) as mesh:
        pool = await mesh.pool("risk")
        with pytest.raises(HttpUnreachable, match="no endpoint is registered"):
            await pool.request("GET", "/v1/accounts/a")


@contextlib.asynccontextmanager
async def over_tls(pki: Path, identity: str) -> AsyncIterator[str]:
    settings = ServerSettings(port=0, tls_dir=pki, identity=identity)
    async with serving_rest([echo(identity)], settings) as address:
        yield address


async def test_mutual_tls_with_mesh_certificates(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    async with over_tls(pki, "risk") as risk:
        async with HttpMesh.static({"risk": [risk]}, tls=TlsFiles.of(pki, "orders")) as mesh:
            assert await served_by(mesh, "alice") == "risk"
            # Five calls, one connection: kept alive and pooled.
            for _ in range(5):
                assert await served_by(mesh, "alice") == "risk"
            connector = mesh.session.connector
            assert connector is not None
            assert sum(len(c) for c in connector._conns.values()) == 1  # one idle, reused

        # A server holding another service's certificate fails the name check.
        orders_files = TlsFiles.of(pki, "orders")
        async with HttpMesh.static({"matching": [risk]}, tls=orders_files) as wrong:
            with pytest.raises(HttpUnreachable, match="cannot connect"):
                await served_by(wrong, "alice", service="matching")

        # A caller the policy does not allow is refused by the server (403).
        async with HttpMesh.static({"risk": [risk]}, tls=TlsFiles.of(pki, "marketdata")) as md:
            pool = await md.pool("risk")
            status, body = await pool.request("GET", "/v1/accounts/alice")
            assert status == 403
            assert orjson.loads(body)["code"] == "PERMISSION_DENIED"

        # Plain HTTP to a TLS port gets no answer.
        async with HttpMesh.static({"risk": [risk]}) as bare:
            with pytest.raises(HttpUnreachable):
                await served_by(bare, "alice")
