"""A REST server registers in a real etcd under the gRPC service's registry name,
with protocol "rest", once it serves; and leaves the registry first when it drains."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import aiohttp
import pytest

from discovery import EtcdClient, LocalEtcd
from services.risk.app import RiskSettings
from services.risk.rest_app import build_rest_services
from services.runtime.rest.server import serving_rest_server

from .rest_support import call


@pytest.fixture(scope="module")
def etcd() -> Iterator[LocalEtcd]:
    with LocalEtcd(name="rest-tests") as server:
        yield server


async def test_registers_with_protocol_rest_and_deregisters_on_drain(etcd: LocalEtcd) -> None:
    prefix = f"/test-{uuid.uuid4().hex[:12]}/services/"
    settings = RiskSettings(port=0, etcd_endpoints=etcd.endpoint, registry_prefix=prefix, zone="z1")
    async with EtcdClient.from_endpoints(etcd.endpoint) as client:
        async with serving_rest_server(build_rest_services, settings) as server:
            snapshot = await client.get_prefix(f"{prefix}risk/")
            [kv] = snapshot.kvs
            record = json.loads(kv.value)
            assert record["protocol"] == "rest"
            assert record["address"] == server.address
            assert record["zone"] == "z1"
            assert kv.lease != 0  # on a lease: a crash leaves the registry one TTL later
            # The address it advertises answers over HTTP.
            async with aiohttp.ClientSession() as session:
                status, _, body = await call(session, "GET", f"http://{record['address']}/healthz")
            assert (status, body) == (200, {"status": "SERVING"})
        assert (await client.get_prefix(f"{prefix}risk/")).kvs == ()
