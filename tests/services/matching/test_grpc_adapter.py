"""MatchingEngine over a real grpc.aio server: messages convert both ways, errors map to codes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from clients.channel_options import plaintext_channel
from services.instruments import DEFAULT_INSTRUMENTS, InstrumentCatalog
from services.matching.app import SERVICE_NAME, MatchingSettings, build_services
from services.matching.engine import MatchingEngine
from services.matching.grpc_adapter import MatchingEngineServicer
from services.runtime.server import ServiceBinding, serving
from trading.v1 import common_pb2, matching_pb2, matching_pb2_grpc

BUY, SELL = common_pb2.SIDE_BUY, common_pb2.SIDE_SELL


@dataclass
class Harness:
    engine: MatchingEngine  # the engine behind the server, in this event loop
    stub: matching_pb2_grpc.MatchingEngineStub


async def engine_server(queue_size: int) -> AsyncIterator[Harness]:
    """A real engine server whose event feed holds `queue_size` events per consumer."""
    engine = MatchingEngine(
        InstrumentCatalog(DEFAULT_INSTRUMENTS), engine_id="me-test", feed_queue_size=queue_size
    )
    binding = ServiceBinding(
        SERVICE_NAME,
        MatchingEngineServicer(engine),
        matching_pb2_grpc.add_MatchingEngineServicer_to_server,
    )
    async with serving([binding], MatchingSettings(port=0)) as address:
        async with plaintext_channel(address) as channel:
            yield Harness(engine, matching_pb2_grpc.MatchingEngineStub(channel))
        engine.close()


@pytest.fixture
async def matching() -> AsyncIterator[Harness]:
    async for harness in engine_server(queue_size=2):
        yield harness


def order(
    order_id: str, side: int, quantity: int, price: int, **fields: object
) -> matching_pb2.SubmitRequest:
    base: dict[str, object] = {
        "order_id": order_id,
        "account_id": f"acct-{order_id}",
        "symbol": "AAPL",
        "side": side,
        "type": common_pb2.ORDER_TYPE_LIMIT,
        "quantity": quantity,
        "price": price,
    }
    return matching_pb2.SubmitRequest(**(base | fields))  # type: ignore[arg-type]


def bad_request(err: grpc.aio.AioRpcError) -> dict[str, str]:
    status = rpc_status.from_call(err)
    assert status is not None
    (detail,) = status.details
    violations = error_details_pb2.BadRequest()
    assert detail.Unpack(violations)
    return {v.field: v.description for v in violations.field_violations}


async def test_submit_cancel_and_book_round_trip(matching: Harness) -> None:
    stub = matching.stub
    resting = await stub.Submit(order("s1", SELL, 10, 10_000))
    assert resting == matching_pb2.ExecutionReport(
        order_id="s1", symbol="AAPL", status=common_pb2.ORDER_STATUS_NEW, resting_quantity=10
    )
    report = await stub.Submit(order("b1", BUY, 4, 10_100))
    assert report.status == common_pb2.ORDER_STATUS_FILLED
    (trade,) = report.trades
    assert trade == common_pb2.Trade(
        trade_id="me-test-1",
        symbol="AAPL",
        price=10_000,
        quantity=4,
        maker_order_id="s1",
        taker_order_id="b1",
        taker_side=BUY,
        maker_account_id="acct-s1",
        taker_account_id="acct-b1",
        timestamp_ns=trade.timestamp_ns,
        sequence=2,
    )
    assert trade.timestamp_ns > 0
    again = await stub.Submit(order("b1", BUY, 4, 10_100))  # idempotent, and says so
    assert again.replayed and not report.replayed
    again.replayed = False
    assert again == report

    book = await stub.GetBook(matching_pb2.GetBookRequest(symbol="AAPL"))
    assert book == matching_pb2.BookSnapshot(
        symbol="AAPL",
        asks=[common_pb2.PriceLevel(price=10_000, quantity=6, order_count=1)],
        sequence=3,
    )
    canceled = await stub.Cancel(matching_pb2.CancelRequest(symbol="AAPL", order_id="s1"))
    assert canceled == matching_pb2.CancelResponse(order_id="s1", canceled_quantity=6)
    again = await stub.Cancel(matching_pb2.CancelRequest(symbol="AAPL", order_id="s1"))
    assert again.canceled_quantity == 0


async def test_invalid_submit_gives_bad_request_details(matching: Harness) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await matching.stub.Submit(order("", BUY, 0, 10_000, symbol="NOPE"))
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    fields = bad_request(caught.value)
    assert set(fields) == {"symbol", "quantity", "order_id"}
    assert "listed symbols are AAPL" in fields["symbol"]


async def test_market_order_with_price_and_gtc_is_refused(matching: Harness) -> None:
    request = order(
        "m1",
        BUY,
        5,
        10_000,
        type=common_pb2.ORDER_TYPE_MARKET,
        time_in_force=common_pb2.TIME_IN_FORCE_GTC,
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await matching.stub.Submit(request)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert set(bad_request(caught.value)) == {"price", "time_in_force"}


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (matching_pb2.GetBookRequest(symbol="AAPL", depth=1001), "depth"),
        (matching_pb2.GetBookRequest(symbol=""), "symbol"),
    ],
)
async def test_invalid_get_book(
    matching: Harness, request_: matching_pb2.GetBookRequest, field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await matching.stub.GetBook(request_)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert set(bad_request(caught.value)) == {field}


async def test_invalid_cancel(matching: Harness) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await matching.stub.Cancel(matching_pb2.CancelRequest(symbol="AAPL"))
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request(caught.value) == {"order_id": "is required"}


async def test_stream_events_snapshot_then_live_and_unsubscribe_on_cancel(
    matching: Harness,
) -> None:
    stub = matching.stub
    await stub.Submit(order("s1", SELL, 5, 10_000))
    call = stub.StreamEvents(matching_pb2.StreamEventsRequest(symbols=["AAPL"]))
    snapshot = await asyncio.wait_for(call.read(), 2)
    assert snapshot.WhichOneof("event") == "quote"
    assert (snapshot.quote.ask_price, snapshot.quote.ask_quantity) == (10_000, 5)
    assert snapshot.quote.sequence == 1
    assert matching.engine.subscriber_count == 1

    report = await stub.Submit(order("b1", BUY, 5, 10_000))
    trade_event = await asyncio.wait_for(call.read(), 2)
    quote_event = await asyncio.wait_for(call.read(), 2)
    assert trade_event.trade == report.trades[0]
    assert quote_event.quote == common_pb2.Quote(
        symbol="AAPL", timestamp_ns=quote_event.quote.timestamp_ns, sequence=3
    )

    call.cancel()
    for _ in range(200):  # the server notices the cancel asynchronously
        if matching.engine.subscriber_count == 0:
            break
        await asyncio.sleep(0.005)
    assert matching.engine.subscriber_count == 0


async def test_stream_events_unknown_symbol(matching: Harness) -> None:
    call = matching.stub.StreamEvents(matching_pb2.StreamEventsRequest(symbols=["AAPL", "X"]))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call.read()
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert set(bad_request(caught.value)) == {"symbols[1]"}


async def test_slow_stream_subscriber_gets_resource_exhausted(matching: Harness) -> None:
    call = matching.stub.StreamEvents(matching_pb2.StreamEventsRequest())
    for _ in DEFAULT_INSTRUMENTS:
        await asyncio.wait_for(call.read(), 2)
    # Three quotes in one turn of the loop: the stream cannot drain its queue of 2
    # in between, so it is dropped, and the engine never waited for it.
    for i in range(3):
        matching.engine.submit(
            order_id=f"b{i}",
            account_id="acct-1",
            symbol="AAPL",
            side=BUY,
            type=common_pb2.ORDER_TYPE_LIMIT,
            time_in_force=0,
            quantity=1,
            price=10_000 + i,
        )
    assert matching.engine.subscriber_count == 0
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await asyncio.wait_for(call.read(), 2)
    assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "fell behind by more than 2 events; resubscribe" in (caught.value.details() or "")


async def test_build_services_serves_the_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRADEMESH_INSTRUMENTS", raising=False)  # the built-in catalog
    settings = MatchingSettings(port=0, engine_id="me-app")
    async with serving(build_services, settings) as address, plaintext_channel(address) as channel:
        stub = matching_pb2_grpc.MatchingEngineStub(channel)
        await stub.Submit(order("s1", SELL, 1, 10_000))
        report = await stub.Submit(order("b1", BUY, 1, 10_000))
        assert report.trades[0].trade_id == "me-app-1"


def test_settings_refuse_more_than_one_worker() -> None:
    with pytest.raises(ValueError, match="runs with workers=1"):
        MatchingSettings(workers=2)


def test_settings_derive_engine_id_from_address_and_start_time() -> None:
    first = MatchingSettings(host="10.0.0.7", port=6000).engine_id
    assert first.startswith("matching-10.0.0.7-6000-")
    assert MatchingSettings(host="::", port=6000).engine_id.startswith("matching-__-6000-")
    # A restart on the same address gets a new id, so trade ids never repeat.
    time.sleep(0.002)
    assert MatchingSettings(host="10.0.0.7", port=6000).engine_id != first
