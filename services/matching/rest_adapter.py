"""MatchingEngine over HTTP/JSON: request models to engine calls, results to dicts.

Nothing here decides anything, as in grpc_adapter.py: the bodies mirror the
trading.v1 messages (proto field names, enums by value name, int64 as numbers)
and domain errors propagate to the runtime, which answers problem documents.

    POST /v1/books/{symbol}/orders                      Submit
    POST /v1/books:submitBatch                          SubmitBatch
    POST /v1/books/{symbol}/orders/{order_id}:cancel    Cancel
    GET  /v1/books/{symbol}?depth=N                     GetBook
    GET  /v1/events:stream?symbols=A&symbols=B          StreamEvents (SSE of MarketEvent)
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from services.errors import DomainError, FieldViolation, InvalidArgument
from services.matching.book import LevelView
from services.matching.engine import BookSnapshot, ExecutionReport, MatchingEngine
from services.matching.feed import MarketEvent, Quote, Trade
from services.runtime.rest.enums import OrderTypeName, SideName, TimeInForceName
from services.runtime.rest.problems import error_body
from services.runtime.rest.responses import JsonResponse
from services.runtime.rest.sse import EventStreamResponse, frame, frames
from trading.v1 import common_pb2

_side_name = common_pb2.Side.Name
_status_name = common_pb2.OrderStatus.Name


class SubmitRequest(BaseModel):
    """trading.v1.SubmitRequest; `symbol` may be left out (it is in the path)."""

    model_config = ConfigDict(extra="forbid")

    order_id: str = ""
    account_id: str = ""
    symbol: str = ""
    side: SideName = "SIDE_UNSPECIFIED"
    type: OrderTypeName = "ORDER_TYPE_UNSPECIFIED"
    time_in_force: TimeInForceName = "TIME_IN_FORCE_UNSPECIFIED"
    quantity: int = 0
    price: int = 0


class SubmitBatchRequest(BaseModel):
    """trading.v1.SubmitBatchRequest: orders of any symbols of this engine."""

    model_config = ConfigDict(extra="forbid")

    symbol: str = ""
    orders: list[SubmitRequest] = []


def trade_dict(trade: Trade) -> dict[str, Any]:
    return {
        "trade_id": trade.trade_id,
        "symbol": trade.symbol,
        "price": trade.price,
        "quantity": trade.quantity,
        "maker_order_id": trade.maker_order_id,
        "taker_order_id": trade.taker_order_id,
        "taker_side": _side_name(int(trade.taker_side)),
        "maker_account_id": trade.maker_account_id,
        "taker_account_id": trade.taker_account_id,
        "timestamp_ns": trade.timestamp_ns,
        "sequence": trade.sequence,
    }


def quote_dict(quote: Quote) -> dict[str, Any]:
    # last_price, volume and trade_count stay 0: market data aggregates them.
    return {
        "symbol": quote.symbol,
        "bid_price": quote.bid_price,
        "bid_quantity": quote.bid_quantity,
        "ask_price": quote.ask_price,
        "ask_quantity": quote.ask_quantity,
        "last_price": 0,
        "last_quantity": 0,
        "volume": 0,
        "trade_count": 0,
        "timestamp_ns": quote.timestamp_ns,
        "sequence": quote.sequence,
    }


def event_dict(event: MarketEvent) -> dict[str, Any]:
    """trading.v1.MarketEvent: its oneof as the one key set."""
    if isinstance(event, Trade):
        return {"trade": trade_dict(event)}
    return {"quote": quote_dict(event)}


def report_dict(report: ExecutionReport) -> dict[str, Any]:
    return {
        "order_id": report.order_id,
        "symbol": report.symbol,
        "status": _status_name(int(report.status)),
        "filled_quantity": report.filled_quantity,
        "resting_quantity": report.resting_quantity,
        "trades": [trade_dict(t) for t in report.trades],
        "replayed": report.replayed,
    }


def _levels(levels: tuple[LevelView, ...]) -> list[dict[str, int]]:
    return [
        {"price": lv.price, "quantity": lv.quantity, "order_count": lv.order_count} for lv in levels
    ]


def snapshot_dict(snapshot: BookSnapshot) -> dict[str, Any]:
    return {
        "symbol": snapshot.symbol,
        "bids": _levels(snapshot.bids),
        "asks": _levels(snapshot.asks),
        "sequence": snapshot.sequence,
    }


def _event_frame(event: MarketEvent) -> bytes:
    return frame(event_dict(event))


def matching_router(engine: MatchingEngine) -> APIRouter:
    """The MatchingEngine routes over one in-process engine."""
    router = APIRouter()

    @router.post("/v1/books/{symbol}/orders", name="Submit", summary="Submit an order")
    async def submit(symbol: str, request: SubmitRequest) -> JsonResponse:
        if request.symbol and request.symbol != symbol:
            raise InvalidArgument(
                [
                    FieldViolation(
                        "symbol",
                        f"must be the path's symbol {symbol!r} or left out, got {request.symbol!r}",
                    )
                ]
            )
        report = engine.submit(
            order_id=request.order_id,
            account_id=request.account_id,
            symbol=symbol,
            side=common_pb2.Side.Value(request.side),
            type=common_pb2.OrderType.Value(request.type),
            time_in_force=common_pb2.TimeInForce.Value(request.time_in_force),
            quantity=request.quantity,
            price=request.price,
        )
        return JsonResponse(report_dict(report))

    @router.post(
        "/v1/books:submitBatch",
        name="SubmitBatch",
        summary="Submit many orders, each answered on its own",
    )
    async def submit_batch(request: SubmitBatchRequest) -> JsonResponse:
        # As the gRPC SubmitBatch: in request order, a refusal is that order's problem.
        orders: list[dict[str, Any]] = []
        for item in request.orders:
            try:
                report = engine.submit(
                    order_id=item.order_id,
                    account_id=item.account_id,
                    symbol=item.symbol,
                    side=common_pb2.Side.Value(item.side),
                    type=common_pb2.OrderType.Value(item.type),
                    time_in_force=common_pb2.TimeInForce.Value(item.time_in_force),
                    quantity=item.quantity,
                    price=item.price,
                )
            except DomainError as err:
                orders.append({"error": error_body(err)})
            else:
                orders.append({"report": report_dict(report)})
        return JsonResponse({"orders": orders})

    @router.post(
        "/v1/books/{symbol}/orders/{order_id}:cancel",
        name="Cancel",
        summary="Cancel a resting order",
    )
    async def cancel(symbol: str, order_id: str) -> JsonResponse:
        canceled = engine.cancel(symbol, order_id)
        return JsonResponse({"order_id": order_id, "canceled_quantity": canceled})

    @router.get("/v1/books/{symbol}", name="GetBook", summary="Aggregated book levels")
    async def get_book(symbol: str, depth: int = 0) -> JsonResponse:
        return JsonResponse(snapshot_dict(engine.book(symbol, depth)))

    @router.get(
        "/v1/events:stream",
        name="StreamEvents",
        summary="Trades and quotes as Server-Sent Events (data: MarketEvent JSON)",
        response_class=EventStreamResponse,
    )
    async def stream_events(
        symbols: Annotated[list[str] | None, Query()] = None,
    ) -> EventStreamResponse:
        # Subscribed here, not in the stream: bad symbols are a 400, not a 200
        # whose stream fails at once. The response leaves the feed however it
        # ends: the client going away, a slow-subscriber drop (ResourceExhausted,
        # sent as an error frame) or the engine closing on drain.
        subscription = engine.subscribe(symbols or [])
        return EventStreamResponse(frames(subscription, _event_frame), subscription)

    return router
