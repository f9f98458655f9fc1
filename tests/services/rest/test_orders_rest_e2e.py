"""The REST variant as real processes: etcd plus two instances of every service
(`--protocol rest`, mTLS), found through the registry, an order placed through
the REST mesh client and its trade seen by market data."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from clients.http_pool import HttpMesh, HttpPool
from discovery import EtcdConfig
from services.launcher import LocalMesh

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMesh]:
    state_dir: Path = tmp_path_factory.mktemp("rest-mesh")
    started = LocalMesh.on_free_ports(state_dir, protocol="rest", tls=True)
    with started.running():
        yield started
    codes = {key: p.process.returncode for key, p in started.processes.items() if p.process}
    assert codes == dict.fromkeys(codes, 0), f"unclean exit; logs in {state_dir / 'logs'}"


async def post(pool: HttpPool, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    status, payload = await pool.request("POST", path, body=orjson.dumps(body))
    return status, orjson.loads(payload)


def order(client_order_id: str, account: str, side: str, quantity: int) -> dict[str, Any]:
    return {
        "account_id": account,
        "client_order_id": client_order_id,
        "symbol": "MSFT",
        "side": side,
        "type": "ORDER_TYPE_LIMIT",
        "time_in_force": "TIME_IN_FORCE_GTC",
        "quantity": quantity,
        "price": 41_000,
    }


async def test_an_order_placed_over_rest_trades_and_reaches_market_data(mesh: LocalMesh) -> None:
    config = EtcdConfig.from_endpoints(mesh.etcd_endpoints)
    async with HttpMesh.from_etcd(config, tls=mesh.client_files()) as client:
        orders = await client.pool("orders", timeout_seconds=5.0)
        marketdata = await client.pool("marketdata", timeout_seconds=5.0)
        async with asyncio.timeout(10):  # both instances registered with protocol "rest"
            while len(orders.members) < 2 or len(marketdata.members) < 2:
                await asyncio.sleep(0.1)

        status, maker = await post(orders, "/v1/orders", order("e2e-b", "bob", "SIDE_SELL", 10))
        assert (status, maker["order"]["status"]) == (200, "ORDER_STATUS_NEW"), maker
        status, taker = await post(orders, "/v1/orders", order("e2e-a", "alice", "SIDE_BUY", 4))
        assert status == 200, taker
        assert taker["order"]["status"] == "ORDER_STATUS_FILLED"
        assert [f["quantity"] for f in taker["fills"]] == [4]

        # Either orders instance reads it back (one shared store).
        path = f"/v1/accounts/alice/orders/{taker['order']['order_id']}"
        for _ in range(2):  # round robin over the two
            status, body = await orders.request("GET", path)
            assert status == 200
            assert orjson.loads(body)["filled_quantity"] == 4

        # Every market data instance follows the engine that owns MSFT.
        for member in marketdata.members.values():
            async with asyncio.timeout(10):
                while True:
                    status, body = await marketdata.request("GET", "/v1/quotes/MSFT", member=member)
                    quote = orjson.loads(body)
                    if status == 200 and quote["trade_count"] >= 1:
                        break
                    await asyncio.sleep(0.1)
            assert (quote["last_price"], quote["volume"]) == (41_000, 4)
