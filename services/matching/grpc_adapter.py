"""MatchingEngine over gRPC: converts trading.v1 messages to engine calls and back.

Nothing here decides anything. Domain errors propagate to the runtime's
interceptor, which turns them into status codes with google.rpc.BadRequest
details (inside the StreamEvents and StreamEventBatches generators too). The
proto enums share their numbers with services.model, so enums convert with int().
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from services.errors import DomainError
from services.matching.book import LevelView
from services.matching.engine import BookSnapshot, ExecutionReport, MatchingEngine
from services.matching.feed import MarketEvent, Quote, Trade
from services.runtime.status import to_rpc_status
from trading.v1 import common_pb2, matching_pb2, matching_pb2_grpc

# Events per StreamEventBatches message, at most: a bound on a message's size
# (a few hundred bytes an event at most) and on how long one write holds the loop.
MAX_EVENTS_PER_BATCH = 256


class MatchingEngineServicer(matching_pb2_grpc.MatchingEngineServicer):
    """trading.v1.MatchingEngine backed by one in-process MatchingEngine."""

    def __init__(self, engine: MatchingEngine) -> None:
        self._engine = engine

    async def Submit(
        self, request: matching_pb2.SubmitRequest, context: grpc.aio.ServicerContext
    ) -> matching_pb2.ExecutionReport:
        return self._submit(request)

    def _submit(self, request: matching_pb2.SubmitRequest) -> matching_pb2.ExecutionReport:
        report = self._engine.submit(
            order_id=request.order_id,
            account_id=request.account_id,
            symbol=request.symbol,
            side=int(request.side),
            type=int(request.type),
            time_in_force=int(request.time_in_force),
            quantity=request.quantity,
            price=request.price,
        )
        return report_to_proto(report)

    async def SubmitBatch(
        self, request: matching_pb2.SubmitBatchRequest, context: grpc.aio.ServicerContext
    ) -> matching_pb2.SubmitBatchResponse:
        # Each order as its own Submit, in request order (so one symbol's orders
        # reach its book in the caller's order); a refusal is that order's status.
        reply = matching_pb2.SubmitBatchResponse()
        for item in request.orders:
            try:
                report = self._submit(item)
            except DomainError as err:
                reply.orders.add(error=to_rpc_status(err))
            else:
                reply.orders.add(report=report)
        return reply

    async def Cancel(
        self, request: matching_pb2.CancelRequest, context: grpc.aio.ServicerContext
    ) -> matching_pb2.CancelResponse:
        canceled = self._engine.cancel(request.symbol, request.order_id)
        return matching_pb2.CancelResponse(order_id=request.order_id, canceled_quantity=canceled)

    async def GetBook(
        self, request: matching_pb2.GetBookRequest, context: grpc.aio.ServicerContext
    ) -> matching_pb2.BookSnapshot:
        return snapshot_to_proto(self._engine.book(request.symbol, request.depth))

    async def StreamEvents(
        self, request: matching_pb2.StreamEventsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[matching_pb2.MarketEvent]:
        # `with` leaves the feed however the stream ends: the client canceling
        # (CancelledError / GeneratorExit at the yield), a slow-subscriber drop
        # (ResourceExhausted, mapped by the interceptor) or the engine closing.
        with self._engine.subscribe(list(request.symbols)) as subscription:
            async for event in subscription:
                yield event_to_proto(event)

    async def StreamEventBatches(
        self, request: matching_pb2.StreamEventsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[matching_pb2.MarketEventBatch]:
        # StreamEvents' subscription (same checks, same slow-subscriber drop, same
        # ends), read a batch at a time: one stream write per batch instead of one
        # per event, which is most of what a small event costs to send.
        with self._engine.subscribe(list(request.symbols)) as subscription:
            while events := await subscription.next_batch(MAX_EVENTS_PER_BATCH):
                yield events_to_proto(events)


def trade_to_proto(trade: Trade) -> common_pb2.Trade:
    return common_pb2.Trade(
        trade_id=trade.trade_id,
        symbol=trade.symbol,
        price=trade.price,
        quantity=trade.quantity,
        maker_order_id=trade.maker_order_id,
        taker_order_id=trade.taker_order_id,
        taker_side=int(trade.taker_side),
        maker_account_id=trade.maker_account_id,
        taker_account_id=trade.taker_account_id,
        timestamp_ns=trade.timestamp_ns,
        sequence=trade.sequence,
    )


def quote_to_proto(quote: Quote) -> common_pb2.Quote:
    # last_price, volume and trade_count stay 0: market data aggregates them.
    return common_pb2.Quote(
        symbol=quote.symbol,
        bid_price=quote.bid_price,
        bid_quantity=quote.bid_quantity,
        ask_price=quote.ask_price,
        ask_quantity=quote.ask_quantity,
        timestamp_ns=quote.timestamp_ns,
        sequence=quote.sequence,
    )


def event_to_proto(event: MarketEvent) -> matching_pb2.MarketEvent:
    if isinstance(event, Trade):
        return matching_pb2.MarketEvent(trade=trade_to_proto(event))
    return matching_pb2.MarketEvent(quote=quote_to_proto(event))


def events_to_proto(events: list[MarketEvent]) -> matching_pb2.MarketEventBatch:
    # add(trade=...) into the batch: ~25% cheaper than building each MarketEvent
    # and copying the list into the batch.
    batch = matching_pb2.MarketEventBatch()
    add = batch.events.add
    for event in events:
        if isinstance(event, Trade):
            add(trade=trade_to_proto(event))
        else:
            add(quote=quote_to_proto(event))
    return batch


def report_to_proto(report: ExecutionReport) -> matching_pb2.ExecutionReport:
    return matching_pb2.ExecutionReport(
        order_id=report.order_id,
        symbol=report.symbol,
        status=int(report.status),
        filled_quantity=report.filled_quantity,
        resting_quantity=report.resting_quantity,
        trades=[trade_to_proto(t) for t in report.trades],
        replayed=report.replayed,
    )


def _levels_to_proto(levels: tuple[LevelView, ...]) -> list[common_pb2.PriceLevel]:
    return [
        common_pb2.PriceLevel(price=lv.price, quantity=lv.quantity, order_count=lv.order_count)
        for lv in levels
    ]


def snapshot_to_proto(snapshot: BookSnapshot) -> matching_pb2.BookSnapshot:
    return matching_pb2.BookSnapshot(
        symbol=snapshot.symbol,
        bids=_levels_to_proto(snapshot.bids),
        asks=_levels_to_proto(snapshot.asks),
        sequence=snapshot.sequence,
    )
