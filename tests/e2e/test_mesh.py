"""All four services as real processes over mutual TLS, driven through the
generated stubs as the external `client` identity."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2

from clients.demo import session
from clients.mesh import Mesh
from clients.tls import SecureChannels
from discovery import EtcdConfig
from services.launcher import LocalMesh
from trading.v1 import (
    common_pb2,
    marketdata_pb2,
    marketdata_pb2_grpc,
    matching_pb2,
    matching_pb2_grpc,
    orders_pb2,
    orders_pb2_grpc,
)

pytestmark = pytest.mark.e2e
MESH_OPTIONS = {"tls": True}  # tests/e2e/conftest.py: every process serves mTLS
_keys = itertools.count(1)


def client_channel(mesh: LocalMesh, service: str) -> grpc.aio.Channel:
    """A channel to the first instance of `service` as the external client."""
    channels = SecureChannels(mesh.client_files())
    return channels.for_service(service)(mesh.addresses()[service], ())


def limit(account: str, side: int, qty: int, price: int, symbol: str = "MSFT", key: str = ""):
    return orders_pb2.PlaceOrderRequest(
        account_id=account,
        client_order_id=key or f"k{next(_keys)}",
        symbol=symbol,
        side=side,
        type=common_pb2.ORDER_TYPE_LIMIT,
        quantity=qty,
        price=price,
    )


@pytest.fixture
async def orders(mesh: LocalMesh) -> AsyncIterator[orders_pb2_grpc.OrderServiceStub]:
    async with client_channel(mesh, "orders") as channel:
        yield orders_pb2_grpc.OrderServiceStub(channel)


@pytest.fixture
async def market(mesh: LocalMesh) -> AsyncIterator[marketdata_pb2_grpc.MarketDataServiceStub]:
    async with client_channel(mesh, "marketdata") as channel:
        yield marketdata_pb2_grpc.MarketDataServiceStub(channel)


async def test_demo_session_trades_and_streams(mesh: LocalMesh) -> None:
    printed: list[str] = []
    config = EtcdConfig.from_endpoints(mesh.etcd_endpoints)
    async with Mesh.from_etcd(config, channel_factory=mesh.client_channels()) as through_etcd:
        seen = await session(through_etcd, say=printed.append)

    assert [(t.quantity, t.price) for t in seen["trades"]] == [(100, 18_950), (20, 19_000)]
    alice = [orders_pb2.OrderEventType.Name(e.type) for e in seen["alice"]]
    assert alice == ["ORDER_EVENT_TYPE_ACCEPTED"] + ["ORDER_EVENT_TYPE_FILLED"] * 2
    bob_fills = [(e.fill.quantity, e.fill.price) for e in seen["bob"] if e.HasField("fill")]
    assert bob_fills == [(100, 18_950), (20, 19_000)], "maker fills reach the maker's stream"
    assert seen["quotes"] and seen["quotes"][-1].last_price == 19_000
    assert "  replayed=True, same order id: True" in printed
    assert any(line.startswith("  INVALID_ARGUMENT:") for line in printed)


async def test_order_entry_stream_answers_each_batch_in_order(orders) -> None:
    good = [limit("erin", common_pb2.SIDE_BUY, 5, 20_000 + i) for i in range(3)]
    invalid = limit("erin", common_pb2.SIDE_BUY, 0, 20_000)
    call = orders.OrderEntry()
    await call.write(orders_pb2.OrderEntryRequest(batch_id=1, orders=good))
    await call.write(orders_pb2.OrderEntryRequest(batch_id=2, orders=[invalid, good[0]]))
    await call.write(orders_pb2.OrderEntryRequest(batch_id=3, orders=[]))
    await call.done_writing()
    responses = [response async for response in call]

    assert [r.batch_id for r in responses] == [1, 2, 3]
    first = responses[0].results
    assert [r.placed.order.client_order_id for r in first] == [o.client_order_id for o in good]
    assert all(r.placed.order.status == common_pb2.ORDER_STATUS_NEW for r in first)

    error, replay = responses[1].results
    assert error.WhichOneof("outcome") == "error"
    assert error.error.code == code_pb2.INVALID_ARGUMENT
    bad_request = error_details_pb2.BadRequest()
    assert error.error.details[0].Unpack(bad_request)
    assert [v.field for v in bad_request.field_violations] == ["quantity"]
    assert replay.placed.replayed and replay.placed.order.order_id == first[0].placed.order.order_id
    assert list(responses[2].results) == []
    assert await call.code() is grpc.StatusCode.OK


async def test_market_data_streams_follow_the_engine(orders, market) -> None:
    quotes = market.StreamQuotes(marketdata_pb2.StreamQuotesRequest(symbols=["GOOG"]))
    trades = market.StreamTrades(marketdata_pb2.StreamTradesRequest(symbols=["GOOG"]))
    initial = await asyncio.wait_for(quotes.read(), 5)
    assert initial.symbol == "GOOG"
    await asyncio.sleep(0.2)  # both subscriptions are registered

    await orders.PlaceOrder(limit("fay", common_pb2.SIDE_SELL, 7, 30_000, symbol="GOOG"))
    await orders.PlaceOrder(limit("gus", common_pb2.SIDE_BUY, 3, 30_000, symbol="GOOG"))

    trade = await asyncio.wait_for(trades.read(), 5)
    assert (trade.symbol, trade.quantity, trade.price) == ("GOOG", 3, 30_000)
    assert trade.taker_side == common_pb2.SIDE_BUY
    assert not (trade.taker_account_id or trade.maker_order_id), "the public tape is anonymous"
    # The trade and the book change arrive as two events: wait for both.
    async with asyncio.timeout(5):
        while True:
            quote = await quotes.read()
            if quote.last_price == 30_000 and quote.ask_quantity == 4:
                break
    assert (quote.ask_price, quote.volume) == (30_000, initial.volume + 3)
    quotes.cancel()
    trades.cancel()


async def test_bad_input_gets_a_clear_status(orders) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await orders.PlaceOrder(limit("hal", common_pb2.SIDE_BUY, 10, 20_000, symbol="NOPE"))
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "unknown symbol 'NOPE'" in caught.value.details()

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await orders.GetOrder(orders_pb2.GetOrderRequest(account_id="hal", order_id="missing"))
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND

    too_big = limit("hal", common_pb2.SIDE_BUY, 100_000, 999_000, symbol="AAPL")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await orders.PlaceOrder(too_big)
    assert caught.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert "hal" in caught.value.details()


async def test_grpcurl_session(mesh: LocalMesh, grpcurl_over_mtls) -> None:
    address = mesh.addresses()["orders"]
    run_grpcurl = grpcurl_over_mtls(mesh.client_files(), "orders")
    listed = await run_grpcurl(address, "list")
    assert listed.returncode == 0, listed.stderr
    assert "trading.v1.OrderService" in listed.stdout.split()

    service = await run_grpcurl(address, "describe", "trading.v1.OrderService")
    assert "rpc OrderEntry ( stream .trading.v1.OrderEntryRequest )" in service.stdout

    method = await run_grpcurl(address, "describe", "trading.v1.OrderService.PlaceOrder")
    assert method.returncode == 0, method.stderr
    assert "Places one order" in method.stdout

    message = await run_grpcurl(address, "describe", "trading.v1.PlaceOrderRequest")
    assert "Idempotency key chosen by the client" in message.stdout

    body = (
        '{"account_id":"ivy","client_order_id":"grpcurl-1","symbol":"AMZN",'
        '"side":"SIDE_BUY","type":"ORDER_TYPE_LIMIT","quantity":10,"price":15000}'
    )
    placed = await run_grpcurl("-d", body, address, "trading.v1.OrderService/PlaceOrder")
    assert placed.returncode == 0, placed.stderr
    assert placed.json()["order"]["status"] == "ORDER_STATUS_NEW"

    invalid = await run_grpcurl(
        "-d", '{"account_id":"ivy"}', address, "trading.v1.OrderService/PlaceOrder"
    )
    assert invalid.returncode != 0
    assert "Code: InvalidArgument" in invalid.stderr and "client_order_id" in invalid.stderr

    health = await run_grpcurl(
        "-d", '{"service":"trading.v1.OrderService"}', address, "grpc.health.v1.Health/Check"
    )
    assert health.json() == {"status": "SERVING"}


async def test_orders_survive_a_restart(mesh: LocalMesh) -> None:
    request = limit("jo", common_pb2.SIDE_SELL, 9, 40_000, symbol="AMZN")
    async with client_channel(mesh, "orders") as channel:
        placed = await orders_pb2_grpc.OrderServiceStub(channel).PlaceOrder(request)

    process = mesh.processes["orders-0"]
    assert await asyncio.to_thread(process.stop) == 0
    process.start()
    await asyncio.to_thread(process.wait_serving)

    async with client_channel(mesh, "orders") as channel:
        stub = orders_pb2_grpc.OrderServiceStub(channel)
        got = await stub.GetOrder(
            orders_pb2.GetOrderRequest(account_id="jo", order_id=placed.order.order_id)
        )
        listed = await stub.ListOrders(orders_pb2.ListOrdersRequest(account_id="jo"))
        replay = await stub.PlaceOrder(request)
    assert got == placed.order
    assert [o.order_id for o in listed.orders] == [placed.order.order_id]
    assert replay.replayed and replay.order.order_id == placed.order.order_id


async def test_only_the_mesh_gets_in(mesh: LocalMesh) -> None:
    """Plaintext is refused, and a client may read a book but not submit to it."""
    async with grpc.aio.insecure_channel(mesh.addresses()["matching"]) as plaintext:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await matching_pb2_grpc.MatchingEngineStub(plaintext).GetBook(
                matching_pb2.GetBookRequest(symbol="AAPL"), timeout=5
            )
    assert refused.value.code() is grpc.StatusCode.UNAVAILABLE

    async with client_channel(mesh, "matching") as channel:
        engine = matching_pb2_grpc.MatchingEngineStub(channel)
        book = await engine.GetBook(matching_pb2.GetBookRequest(symbol="AAPL"), timeout=5)
        assert book.symbol == "AAPL"
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await engine.Submit(matching_pb2.SubmitRequest(order_id="x"), timeout=5)
    assert denied.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert "'client' may not call /trading.v1.MatchingEngine/Submit" in denied.value.details()
