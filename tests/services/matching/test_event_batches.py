"""MatchingEngine.StreamEventBatches against a real engine server: the StreamEvents
feed, several events per message."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest

from services.instruments import DEFAULT_INSTRUMENTS, InstrumentCatalog
from services.matching.engine import MatchingEngine
from services.matching.grpc_adapter import MAX_EVENTS_PER_BATCH
from services.model import OrderType, Side, TimeInForce
from tests.services.matching.test_grpc_adapter import Harness, bad_request, engine_server
from trading.v1 import matching_pb2


@pytest.fixture
async def matching() -> AsyncIterator[Harness]:
    async for harness in engine_server(queue_size=10_000):
        yield harness


@pytest.fixture
async def tiny_queue() -> AsyncIterator[Harness]:
    async for harness in engine_server(queue_size=2):
        yield harness


def submit(engine: MatchingEngine, order_id: str, side: Side, price: int, symbol: str) -> None:
    engine.submit(
        order_id=order_id,
        account_id=f"acct-{order_id}",
        symbol=symbol,
        side=side,
        type=OrderType.LIMIT,
        time_in_force=TimeInForce.GTC,
        quantity=1,
        price=price,
    )


def trade_and_quotes(engine: MatchingEngine, count: int, tag: str) -> None:
    """`count` rounds of: a sell rests (a quote), a buy takes it (a trade and a
    quote), alternating two symbols; all in one turn of the loop."""
    for i in range(count):
        symbol = ("AAPL", "MSFT")[i % 2]
        submit(engine, f"{tag}s{i}", Side.SELL, 10_000 + i, symbol)
        submit(engine, f"{tag}b{i}", Side.BUY, 10_000 + i, symbol)


async def read_events(call: grpc.aio.UnaryStreamCall, count: int) -> list[matching_pb2.MarketEvent]:
    events: list[matching_pb2.MarketEvent] = []
    while len(events) < count:
        events.append(await asyncio.wait_for(call.read(), 2))
    return events


async def read_batches(
    call: grpc.aio.UnaryStreamCall, count: int
) -> list[matching_pb2.MarketEventBatch]:
    batches: list[matching_pb2.MarketEventBatch] = []
    while sum(len(batch.events) for batch in batches) < count:
        batches.append(await asyncio.wait_for(call.read(), 2))
    return batches


async def test_batches_carry_exactly_the_events_of_stream_events(matching: Harness) -> None:
    engine, stub = matching.engine, matching.stub
    submit(engine, "rest", Side.SELL, 20_000, "AAPL")  # in both snapshots
    request = matching_pb2.StreamEventsRequest(symbols=["AAPL", "MSFT"])
    events_call = stub.StreamEvents(request)
    batches_call = stub.StreamEventBatches(request)
    snapshot = await read_batches(batches_call, 2)
    assert await read_events(events_call, 2) == [e for b in snapshot for e in b.events]
    assert snapshot[0].events[0].quote.ask_price == 20_000

    # 1,200 events in one loop turn: more than a batch holds.
    trade_and_quotes(engine, 400, "burst")
    batches = await read_batches(batches_call, 1_200)
    assert [len(b.events) for b in batches] == [MAX_EVENTS_PER_BATCH] * 4 + [176]
    # Then 3 events at a time, each time once the stream has sent everything
    # before: each goes out as it is, not held back to fill a batch.
    for i in range(3):
        trade_and_quotes(engine, 1, f"late{i}")
        late = await read_batches(batches_call, 3)
        assert [len(b.events) for b in late] == [3]
        batches += late
    total = 3 * 403
    events = await read_events(events_call, total)

    assert [e for b in batches for e in b.events] == events  # same events, same order
    sequences = [e.trade.sequence or e.quote.sequence for e in events]
    assert sequences == sorted(sequences) and len(set(sequences)) == total
    assert engine.subscriber_count == 2
    events_call.cancel()
    batches_call.cancel()


async def test_unknown_symbol_is_refused_as_by_stream_events(matching: Harness) -> None:
    request = matching_pb2.StreamEventsRequest(symbols=["AAPL", "X"])
    with pytest.raises(grpc.aio.AioRpcError) as batches:
        await matching.stub.StreamEventBatches(request).read()
    with pytest.raises(grpc.aio.AioRpcError) as events:
        await matching.stub.StreamEvents(request).read()
    assert batches.value.code() is events.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request(batches.value) == bad_request(events.value)
    assert set(bad_request(batches.value)) == {"symbols[1]"}


async def test_a_slow_batch_subscriber_is_dropped_and_a_gone_one_unsubscribed(
    tiny_queue: Harness,
) -> None:
    engine, stub = tiny_queue.engine, tiny_queue.stub
    slow = stub.StreamEventBatches(matching_pb2.StreamEventsRequest())
    snapshot = await asyncio.wait_for(slow.read(), 2)
    assert len(snapshot.events) == len(DEFAULT_INSTRUMENTS)  # every snapshot quote at once
    # Three quotes in one loop turn overflow a queue of 2 before any batch is taken.
    for i in range(3):
        submit(engine, f"b{i}", Side.BUY, 10_000 + i, "AAPL")
    assert engine.subscriber_count == 0
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await asyncio.wait_for(slow.read(), 2)
    assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "fell behind by more than 2 events; resubscribe" in (caught.value.details() or "")

    gone = stub.StreamEventBatches(matching_pb2.StreamEventsRequest(symbols=["AAPL"]))
    await asyncio.wait_for(gone.read(), 2)
    assert engine.subscriber_count == 1
    gone.cancel()
    for _ in range(200):  # the server notices the cancel asynchronously
        if engine.subscriber_count == 0:
            break
        await asyncio.sleep(0.005)
    assert engine.subscriber_count == 0


async def test_next_batch_takes_snapshot_then_live_events_in_order_within_the_limit() -> None:
    engine = MatchingEngine(InstrumentCatalog(DEFAULT_INSTRUMENTS), engine_id="me-unit")
    symbols = ["AAPL", "MSFT", "GOOG"]
    with engine.subscribe(symbols) as subscription:
        trade_and_quotes(engine, 2, "x")  # AAPL: quote, trade, quote; MSFT: the same
        taken = [await subscription.next_batch(2) for _ in range(4)]
        assert [len(batch) for batch in taken] == [2, 2, 2, 2]  # 3 snapshots + 6 live
        rest = await subscription.next_batch(256)
        assert len(rest) == 1
        events = [event for batch in [*taken, rest] for event in batch]
        assert [event.symbol for event in events[:3]] == symbols
        sequences = [event.sequence for event in events[3:]]
        assert sequences == list(range(1, 7))
    assert await subscription.next_batch(256) == []  # ended normally
