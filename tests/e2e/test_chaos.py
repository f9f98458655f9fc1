"""Orders keep flowing while instances of every service stop and crash.

For each service in turn, one instance is stopped gracefully (SIGTERM) and
restarted, then the other is killed with SIGKILL and restarted, while clients
keep placing orders through the mesh. Afterwards every acknowledged order is
still there, no client_order_id produced two orders, and every failed call is
one the retry rules could not retry (a definite answer, or an outage longer than
a call's retries and deadline).
"""

from __future__ import annotations

import asyncio
import collections
import time
from dataclasses import dataclass, field

import grpc
import pytest

from clients import trading
from clients.mesh import Mesh
from discovery import EtcdConfig
from services.launcher import SERVICE_ORDER, LocalMesh
from trading.v1 import common_pb2, orders_pb2, orders_pb2_grpc

pytestmark = pytest.mark.e2e

ACCOUNTS = [f"chaos-{i}" for i in range(8)]
SYMBOLS = ["AAPL", "MSFT", "GOOG"]
CLIENTS = 4
MAX_ORDERS = 4000  # bounds the load even if the chaos steps hang


@dataclass
class Ledger:
    """What the clients were told, by client_order_id."""

    placed: dict[tuple[str, str], str] = field(default_factory=dict)  # key -> order id
    failed: dict[tuple[str, str], grpc.StatusCode] = field(default_factory=dict)
    requests: dict[tuple[str, str], orders_pb2.PlaceOrderRequest] = field(default_factory=dict)


def order_request(n: int) -> orders_pb2.PlaceOrderRequest:
    side = common_pb2.SIDE_BUY if n % 2 else common_pb2.SIDE_SELL
    return orders_pb2.PlaceOrderRequest(
        account_id=ACCOUNTS[n % len(ACCOUNTS)],
        client_order_id=f"c{n}",
        symbol=SYMBOLS[n % len(SYMBOLS)],
        side=side,
        type=common_pb2.ORDER_TYPE_LIMIT,
        # Buys and sells overlap around 20_000, so orders trade and rest.
        price=20_000 + (n % 7) * 5 * (1 if side == common_pb2.SIDE_BUY else -1) + 10,
        quantity=1 + n % 5,
    )


async def place_orders(stub, ledger: Ledger, numbers, stop: asyncio.Event) -> None:
    for n in numbers:
        if stop.is_set():
            return
        request = order_request(n)
        key = (request.account_id, request.client_order_id)
        ledger.requests[key] = request
        try:
            reply = await stub.PlaceOrder(request, timeout=5)
            ledger.placed[key] = reply.order.order_id
        except grpc.aio.AioRpcError as err:
            ledger.failed[key] = err.code()
        await asyncio.sleep(0.005)


def restart(process) -> None:
    process.start()
    process.wait_serving(30)


def chaos(mesh: LocalMesh, log: list[str]) -> None:
    for name in SERVICE_ORDER:
        graceful, crashed = mesh.instances_of(name)[:2]
        code = graceful.stop()
        log.append(f"{name} instance on {graceful.port}: SIGTERM -> exit {code}")
        restart(graceful)
        time.sleep(0.5)
        crashed.process.kill()
        crashed.process.wait()
        log.append(f"{name} instance on {crashed.port}: SIGKILL")
        restart(crashed)
        time.sleep(0.5)


@pytest.fixture(scope="module")
def chaos_mesh(tmp_path_factory: pytest.TempPathFactory):
    started = LocalMesh.on_free_ports(tmp_path_factory.mktemp("chaos"), grace_seconds=2.0)
    with started.running():
        yield started


async def test_no_order_is_lost_or_duplicated_while_instances_come_and_go(chaos_mesh) -> None:
    ledger, steps = Ledger(), []
    numbers = iter(range(MAX_ORDERS))
    stop = asyncio.Event()
    async with Mesh.from_etcd(EtcdConfig.from_endpoints(chaos_mesh.etcd_endpoints)) as mesh:
        stub = orders_pb2_grpc.OrderServiceStub(await mesh.channel(trading.ORDERS))
        clients = [
            asyncio.create_task(place_orders(stub, ledger, numbers, stop)) for _ in range(CLIENTS)
        ]
        await asyncio.sleep(1.0)  # steady traffic first
        await asyncio.to_thread(chaos, chaos_mesh, steps)
        await asyncio.sleep(1.0)  # and after
        stop.set()
        await asyncio.gather(*clients)

        # Every acknowledged order is there, under the id the client was given.
        for (account, key), order_id in ledger.placed.items():
            got = await stub.GetOrder(
                orders_pb2.GetOrderRequest(account_id=account, client_order_id=key), timeout=5
            )
            assert got.order_id == order_id
        # A failed call retried now, with the same key, never makes a second order.
        replays = collections.Counter()
        for key, _code in ledger.failed.items():
            try:
                reply = await stub.PlaceOrder(ledger.requests[key], timeout=5)
                replays["answered now: " + ("replayed" if reply.replayed else "placed")] += 1
            except grpc.aio.AioRpcError as err:
                replays[f"same key again: {err.code().name}"] += 1
        orders_seen = []
        for account in ACCOUNTS:
            token = ""
            while True:
                page = await stub.ListOrders(
                    orders_pb2.ListOrdersRequest(
                        account_id=account, page_size=1000, page_token=token
                    )
                )
                orders_seen += [(o.account_id, o.client_order_id) for o in page.orders]
                token = page.next_page_token
                if not token:
                    break

    duplicates = [key for key, n in collections.Counter(orders_seen).items() if n > 1]
    assert not duplicates, f"client_order_ids with two orders: {duplicates[:5]}"
    assert set(ledger.placed) <= set(orders_seen)
    codes = collections.Counter(code.name for code in ledger.failed.values())
    attempted = len(ledger.requests)
    summary = (
        f"{attempted} orders sent, {len(ledger.placed)} acknowledged, "
        f"{len(ledger.failed)} failed {dict(codes)}; retried with the same key: {dict(replays)}"
    )
    print("\n".join(["", *steps, summary]))
    assert len(steps) == 2 * len(SERVICE_ORDER), "every service lost one instance each way"
    assert attempted >= 200, summary
    # Failures the retry rules cannot hide: a definite "try again later" answer
    # (UNAVAILABLE) or a call whose deadline ran out during an outage.
    assert set(codes) <= {"UNAVAILABLE", "DEADLINE_EXCEEDED"}, summary
    assert len(ledger.failed) < 0.1 * attempted, summary
