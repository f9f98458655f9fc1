"""OrderService over gRPC: converts trading.v1 messages to OrderDesk calls and back.

Nothing here decides anything. Domain errors propagate to the runtime's
interceptor, which maps them to status codes with google.rpc.BadRequest details
(inside the streaming handlers too), except in OrderEntry, where each order's
error becomes that order's google.rpc.Status result and the stream goes on.
A batch of more than 1000 orders places none of them: every order gets the same
INVALID_ARGUMENT result saying the batch is too large. A pending order (still
being placed) shows as ORDER_STATUS_UNSPECIFIED. The proto enums share their
numbers with services.model, so enums convert with int().
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from services.errors import DomainError
from services.orders.events import OrderEvent
from services.orders.lifecycle import Fill, Order
from services.orders.placement import OrderDesk, OrderRequest, Placement
from services.runtime.status import to_rpc_status
from trading.v1 import orders_pb2, orders_pb2_grpc


class OrderServiceServicer(orders_pb2_grpc.OrderServiceServicer):
    """trading.v1.OrderService backed by one OrderDesk."""

    def __init__(self, desk: OrderDesk) -> None:
        self.desk = desk

    async def PlaceOrder(
        self, request: orders_pb2.PlaceOrderRequest, context: grpc.aio.ServicerContext
    ) -> orders_pb2.PlaceOrderResponse:
        return placement_to_proto(await self.desk.place(request_from_proto(request)))

    async def CancelOrder(
        self, request: orders_pb2.CancelOrderRequest, context: grpc.aio.ServicerContext
    ) -> orders_pb2.CancelOrderResponse:
        ref = request.WhichOneof("order_ref")
        canceled = await self.desk.cancel(
            request.account_id,
            order_id=request.order_id if ref == "order_id" else "",
            client_order_id=request.client_order_id if ref == "client_order_id" else "",
        )
        return orders_pb2.CancelOrderResponse(
            order=order_to_proto(canceled.order), canceled_quantity=canceled.canceled_quantity
        )

    async def GetOrder(
        self, request: orders_pb2.GetOrderRequest, context: grpc.aio.ServicerContext
    ) -> orders_pb2.Order:
        ref = request.WhichOneof("order_ref")
        order = self.desk.get(
            request.account_id,
            order_id=request.order_id if ref == "order_id" else "",
            client_order_id=request.client_order_id if ref == "client_order_id" else "",
        )
        return order_to_proto(order)

    async def ListOrders(
        self, request: orders_pb2.ListOrdersRequest, context: grpc.aio.ServicerContext
    ) -> orders_pb2.ListOrdersResponse:
        page = self.desk.list_orders(
            request.account_id,
            symbol=request.symbol,
            statuses=[int(s) for s in request.statuses],
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return orders_pb2.ListOrdersResponse(
            orders=[order_to_proto(o) for o in page.orders], next_page_token=page.next_page_token
        )

    async def StreamOrderEvents(
        self, request: orders_pb2.StreamOrderEventsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[orders_pb2.OrderEvent]:
        # `with` leaves the hub however the stream ends: the client canceling, a
        # slow-subscriber drop (ResourceExhausted, mapped by the interceptor), or
        # the server shutting down.
        with self.desk.subscribe(request.account_id) as stream:
            async for sequence, event in stream:
                yield event_to_proto(event, sequence)

    async def OrderEntry(
        self,
        request_iterator: AsyncIterator[orders_pb2.OrderEntryRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[orders_pb2.OrderEntryResponse]:
        async for batch in request_iterator:
            outcomes = await self.desk.place_batch([request_from_proto(o) for o in batch.orders])
            yield orders_pb2.OrderEntryResponse(
                batch_id=batch.batch_id, results=[result_to_proto(o) for o in outcomes]
            )


def request_from_proto(request: orders_pb2.PlaceOrderRequest) -> OrderRequest:
    return OrderRequest(
        account_id=request.account_id,
        client_order_id=request.client_order_id,
        symbol=request.symbol,
        side=int(request.side),
        type=int(request.type),
        time_in_force=int(request.time_in_force),
        quantity=request.quantity,
        price=request.price,
    )


def order_to_proto(order: Order) -> orders_pb2.Order:
    spec = order.spec
    return orders_pb2.Order(
        order_id=order.order_id,
        client_order_id=order.client_order_id,
        account_id=order.account_id,
        symbol=spec.symbol,
        side=int(spec.side),
        type=int(spec.type),
        time_in_force=int(spec.time_in_force),
        quantity=spec.quantity,
        price=spec.price,
        filled_quantity=order.filled_quantity,
        filled_notional=order.filled_notional,
        status=0 if order.status is None else int(order.status),
        reject_reason=order.reject_reason,
        created_at_ns=order.created_at_ns,
        updated_at_ns=order.updated_at_ns,
    )


def fill_to_proto(fill: Fill) -> orders_pb2.Fill:
    return orders_pb2.Fill(
        trade_id=fill.trade_id,
        order_id=fill.order_id,
        price=fill.price,
        quantity=fill.quantity,
        aggressor=fill.aggressor,
        timestamp_ns=fill.timestamp_ns,
    )


def placement_to_proto(placement: Placement) -> orders_pb2.PlaceOrderResponse:
    return orders_pb2.PlaceOrderResponse(
        order=order_to_proto(placement.order),
        fills=[fill_to_proto(f) for f in placement.fills],
        replayed=placement.replayed,
    )


def result_to_proto(outcome: Placement | DomainError) -> orders_pb2.OrderEntryResult:
    if isinstance(outcome, DomainError):
        return orders_pb2.OrderEntryResult(error=to_rpc_status(outcome))
    return orders_pb2.OrderEntryResult(placed=placement_to_proto(outcome))


def event_to_proto(event: OrderEvent, sequence: int) -> orders_pb2.OrderEvent:
    return orders_pb2.OrderEvent(
        type=int(event.type),
        order=order_to_proto(event.order),
        fill=None if event.fill is None else fill_to_proto(event.fill),
        sequence=sequence,
    )
