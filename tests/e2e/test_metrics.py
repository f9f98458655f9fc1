"""A real service process serves Prometheus /metrics on its gRPC port + 1000."""

from __future__ import annotations

import asyncio
import urllib.request

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.launcher import LocalMesh
from trading.v1 import common_pb2, orders_pb2, orders_pb2_grpc

pytestmark = pytest.mark.e2e
MESH_OPTIONS = {"instances": {"orders": 1, "risk": 2, "matching": 1, "marketdata": 1}}


def scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_orders_process_shows_a_place_order_made_through_it(mesh: LocalMesh) -> None:
    orders = mesh.instances_of("orders")[0]
    async with grpc.aio.insecure_channel(orders.address) as channel:
        reply = await orders_pb2_grpc.OrderServiceStub(channel).PlaceOrder(
            orders_pb2.PlaceOrderRequest(
                account_id="carol",
                client_order_id="m-1",
                symbol="AAPL",
                side=common_pb2.SIDE_BUY,
                type=common_pb2.ORDER_TYPE_LIMIT,
                quantity=1,
                price=18_000,
            ),
            timeout=10,
        )
    assert reply.order.order_id

    samples = await asyncio.to_thread(scrape, orders.port + 1000)
    placed = {
        "rpc_service": "trading.v1.OrderService",
        "rpc_method": "PlaceOrder",
        "rpc_grpc_status_code": "0",
    }
    assert samples["rpc_server_requests_total", frozenset(placed.items())] == 1
    del placed["rpc_grpc_status_code"]
    assert samples["rpc_server_duration_seconds_count", frozenset(placed.items())] == 1
    # Its registration in etcd, and the risk instances it called through the mesh.
    instance = frozenset({"service": "orders", "instance": "orders-0"}.items())
    assert samples["trademesh_registry_registered", instance] == 1
    assert samples["trademesh_registry_registrations_total", instance] >= 1
    risk = {
        dict(labels)["endpoint"]: value
        for (name, labels), value in samples.items()
        if name == "trademesh_mesh_endpoint_healthy" and dict(labels)["service"] == "risk"
    }
    assert risk == {"risk-0": 1, "risk-1": 1}
    assert samples["trademesh_mesh_panic", frozenset({"service": "risk"}.items())] == 0
