"""OrderService over HTTP/JSON: the routes of trading.v1.OrderService on one OrderDesk.

The REST twin of grpc_adapter.py; nothing here decides anything. Bodies mirror
the proto messages (proto field names, enums by value name, int64 as numbers).
Domain errors propagate to the REST runtime, which answers with a problem
document, except in the batch route, where each order's error becomes that
order's result and the others go on (as OrderEntry does per batch). A batch of
more than 1000 orders places none of them and is refused as a whole. Route
names are the gRPC method names: the authorization policy is the gRPC one.

    POST /v1/orders                                           PlaceOrder
    POST /v1/orders:batch                                     OrderEntry (one batch)
    GET  /v1/accounts/{account_id}/orders                     ListOrders
    GET  /v1/accounts/{account_id}/orders/{order_id}          GetOrder
    GET  /v1/accounts/{account_id}/orders:byClientId/{id}     GetOrder by client_order_id
    POST /v1/accounts/{account_id}/orders/{order_id}:cancel   CancelOrder
    GET  /v1/accounts/{account_id}/orders:events              StreamOrderEvents (SSE)
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from services.errors import DomainError
from services.orders.events import OrderEvent
from services.orders.lifecycle import Fill, Order
from services.orders.placement import MAX_BATCH_ORDERS, OrderDesk, OrderRequest, Placement
from services.runtime.rest.enums import OrderTypeName, SideName, TimeInForceName
from services.runtime.rest.problems import error_body
from services.runtime.rest.responses import JsonResponse
from services.runtime.rest.sse import EventStreamResponse, frame, frames
from trading.v1 import common_pb2, orders_pb2

SIDE_NAMES = {n: common_pb2.Side.Name(n) for n in common_pb2.Side.values()}
TYPE_NAMES = {n: common_pb2.OrderType.Name(n) for n in common_pb2.OrderType.values()}
TIF_NAMES = {n: common_pb2.TimeInForce.Name(n) for n in common_pb2.TimeInForce.values()}
STATUS_NAMES = {n: common_pb2.OrderStatus.Name(n) for n in common_pb2.OrderStatus.values()}
STATUS_VALUES = {name: n for n, name in STATUS_NAMES.items()}
EVENT_NAMES = {n: orders_pb2.OrderEventType.Name(n) for n in orders_pb2.OrderEventType.values()}

Int64 = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]


class PlaceOrderRequest(BaseModel):
    """trading.v1.PlaceOrderRequest: an omitted field is its zero value, as in
    proto3, and the service says which ones an order needs."""

    model_config = ConfigDict(extra="forbid")

    account_id: str = ""
    client_order_id: str = Field("", description="idempotency key, unique per account")
    symbol: str = ""
    side: SideName = "SIDE_UNSPECIFIED"
    type: OrderTypeName = "ORDER_TYPE_UNSPECIFIED"
    time_in_force: TimeInForceName = "TIME_IN_FORCE_UNSPECIFIED"
    quantity: Int64 = Field(0, description="lots")
    price: Int64 = Field(0, description="minor units per unit; 0 for MARKET orders")

    def to_request(self) -> OrderRequest:
        return OrderRequest(
            account_id=self.account_id,
            client_order_id=self.client_order_id,
            symbol=self.symbol,
            side=common_pb2.Side.Value(self.side),
            type=common_pb2.OrderType.Value(self.type),
            time_in_force=common_pb2.TimeInForce.Value(self.time_in_force),
            quantity=self.quantity,
            price=self.price,
        )


class OrderBatch(BaseModel):
    """One batch of orders (OrderEntryRequest), placed in order."""

    model_config = ConfigDict(extra="forbid")

    orders: list[PlaceOrderRequest] = Field(
        default_factory=list, description=f"at most {MAX_BATCH_ORDERS} orders"
    )


def order_to_dict(order: Order) -> dict[str, Any]:
    spec = order.spec
    return {
        "order_id": order.order_id,
        "client_order_id": order.client_order_id,
        "account_id": order.account_id,
        "symbol": spec.symbol,
        "side": SIDE_NAMES[spec.side],
        "type": TYPE_NAMES[spec.type],
        "time_in_force": TIF_NAMES[spec.time_in_force],
        "quantity": spec.quantity,
        "price": spec.price,
        "filled_quantity": order.filled_quantity,
        "filled_notional": order.filled_notional,
        # A pending order (still being placed) shows as UNSPECIFIED, as over gRPC.
        "status": STATUS_NAMES[0 if order.status is None else order.status],
        "reject_reason": order.reject_reason,
        "created_at_ns": order.created_at_ns,
        "updated_at_ns": order.updated_at_ns,
    }


def fill_to_dict(fill: Fill) -> dict[str, Any]:
    return {
        "trade_id": fill.trade_id,
        "order_id": fill.order_id,
        "price": fill.price,
        "quantity": fill.quantity,
        "aggressor": fill.aggressor,
        "timestamp_ns": fill.timestamp_ns,
    }


def placement_to_dict(placement: Placement) -> dict[str, Any]:
    return {
        "order": order_to_dict(placement.order),
        "fills": [fill_to_dict(f) for f in placement.fills],
        "replayed": placement.replayed,
    }


def result_to_dict(outcome: Placement | DomainError) -> dict[str, Any]:
    if isinstance(outcome, DomainError):
        return {"error": error_body(outcome)}
    return {"placed": placement_to_dict(outcome)}


def event_to_dict(event: OrderEvent, sequence: int) -> dict[str, Any]:
    return {
        "type": EVENT_NAMES[event.type],
        "order": order_to_dict(event.order),
        "fill": None if event.fill is None else fill_to_dict(event.fill),
        "sequence": sequence,
    }


def _status_value(name: str) -> int:
    # An unknown name is -1, which the desk reports as statuses[i] like over gRPC.
    return STATUS_VALUES.get(name, -1)


def orders_router(desk: OrderDesk) -> APIRouter:
    """The OrderService routes on `desk`."""
    router = APIRouter()

    @router.post("/v1/orders", name="PlaceOrder", summary="Place one order (idempotent)")
    async def place_order(body: PlaceOrderRequest) -> JsonResponse:
        return JsonResponse(placement_to_dict(await desk.place(body.to_request())))

    @router.post(
        "/v1/orders:batch",
        name="OrderEntry",
        summary=f"Place a batch of up to {MAX_BATCH_ORDERS} orders, one result per order",
    )
    async def place_batch(body: OrderBatch) -> JsonResponse:
        outcomes = await desk.place_batch([o.to_request() for o in body.orders])
        if len(body.orders) > MAX_BATCH_ORDERS and isinstance(outcomes[0], DomainError):
            # The desk placed none and gave each the same error: it answers the batch.
            raise outcomes[0]
        return JsonResponse({"results": [result_to_dict(o) for o in outcomes]})

    @router.get("/v1/accounts/{account_id}/orders", name="ListOrders", summary="A page of orders")
    async def list_orders(
        account_id: str,
        symbol: str = "",
        statuses: Annotated[list[str] | None, Query()] = None,
        page_size: Annotated[int, Query(ge=-(2**31), le=2**31 - 1)] = 0,
        page_token: str = "",
    ) -> JsonResponse:
        page = desk.list_orders(
            account_id,
            symbol=symbol,
            statuses=[_status_value(s) for s in statuses or ()],
            page_size=page_size,
            page_token=page_token,
        )
        return JsonResponse(
            {
                "orders": [order_to_dict(o) for o in page.orders],
                "next_page_token": page.next_page_token,
            }
        )

    @router.get("/v1/accounts/{account_id}/orders/{order_id}", name="GetOrder", summary="One order")
    async def get_order(account_id: str, order_id: str) -> JsonResponse:
        return JsonResponse(order_to_dict(desk.get(account_id, order_id=order_id)))

    @router.get(
        "/v1/accounts/{account_id}/orders:byClientId/{client_order_id}",
        name="GetOrder",
        summary="One order, by its client_order_id",
    )
    async def get_order_by_client_id(account_id: str, client_order_id: str) -> JsonResponse:
        order = desk.get(account_id, client_order_id=client_order_id)
        return JsonResponse(order_to_dict(order))

    @router.post(
        "/v1/accounts/{account_id}/orders/{order_id}:cancel",
        name="CancelOrder",
        summary="Cancel the working rest of an order",
    )
    async def cancel_order(account_id: str, order_id: str) -> JsonResponse:
        canceled = await desk.cancel(account_id, order_id=order_id)
        return JsonResponse(
            {
                "order": order_to_dict(canceled.order),
                "canceled_quantity": canceled.canceled_quantity,
            }
        )

    @router.get(
        "/v1/accounts/{account_id}/orders:events",
        name="StreamOrderEvents",
        summary="Server-Sent Events: every later event of the account's orders",
        response_class=EventStreamResponse,
    )
    async def stream_order_events(account_id: str) -> EventStreamResponse:
        stream = desk.subscribe(account_id)  # an invalid id is a 400 before streaming
        return EventStreamResponse(
            frames(stream, lambda item: _event_frame(*item)), subscription=stream
        )

    return router


def _event_frame(sequence: int, event: OrderEvent) -> bytes:
    return frame(event_to_dict(event, sequence))
