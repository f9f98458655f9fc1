"""The risk and matching ports over gRPC: trading.v1 stubs on grpc.aio channels.

Each call carries a deadline (the downstream timeout), so a hung peer cannot hold
a placement; a failed call becomes the DomainError it means to the saga
(services.runtime.status.error_from_rpc: refusals keep their class, transport
failures and deadlines become Unavailable).
"""

from __future__ import annotations

from collections.abc import Callable

import grpc

from clients.balancers.ring_hash import RingHashPicker
from clients.endpoint_pool import EndpointPool
from services.errors import Unavailable
from services.model import OrderSpec, OrderStatus
from services.orders.ports import Execution, Hold, Released, Trade
from services.runtime.status import error_from_rpc
from trading.v1 import common_pb2, matching_pb2, matching_pb2_grpc, risk_pb2, risk_pb2_grpc

RISK_PEER = "risk service"
MATCHING_PEER = "matching engine"


class GrpcRisk:
    """RiskPort on trading.v1.RiskService."""

    def __init__(self, channel: grpc.aio.Channel, *, timeout_seconds: float) -> None:
        self._stub = risk_pb2_grpc.RiskServiceStub(channel)
        self._timeout = timeout_seconds

    async def reserve(self, *, reservation_id: str, account_id: str, spec: OrderSpec) -> Hold:
        request = risk_pb2.ReserveRequest(
            reservation_id=reservation_id,
            account_id=account_id,
            symbol=spec.symbol,
            side=int(spec.side),
            quantity=spec.quantity,
            price=spec.price,
        )
        try:
            reply = await self._stub.Reserve(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as err:
            raise error_from_rpc(err, RISK_PEER) from err
        held = reply.reservation
        return Hold(held.reservation_id, held.open_quantity, held.reserved_cash, reply.replayed)

    async def release(self, reservation_id: str, account_id: str) -> Released:
        request = risk_pb2.ReleaseRequest(reservation_id=reservation_id, account_id=account_id)
        try:
            reply = await self._stub.Release(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as err:
            raise error_from_rpc(err, RISK_PEER) from err
        return Released(reply.released_quantity, reply.released_cash)

    async def apply_fill(
        self, *, reservation_id: str, account_id: str, trade_id: str, price: int, quantity: int
    ) -> bool:
        request = risk_pb2.ApplyFillRequest(
            reservation_id=reservation_id,
            account_id=account_id,
            trade_id=trade_id,
            price=price,
            quantity=quantity,
        )
        try:
            reply = await self._stub.ApplyFill(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as err:
            raise error_from_rpc(err, RISK_PEER) from err
        return bool(reply.replayed)


class GrpcMatching:
    """MatchingPort on trading.v1.MatchingEngine."""

    def __init__(self, channel: grpc.aio.Channel, *, timeout_seconds: float) -> None:
        self._stub = matching_pb2_grpc.MatchingEngineStub(channel)
        self._timeout = timeout_seconds

    async def submit(self, *, order_id: str, account_id: str, spec: OrderSpec) -> Execution:
        request = matching_pb2.SubmitRequest(
            order_id=order_id,
            account_id=account_id,
            symbol=spec.symbol,
            side=int(spec.side),
            type=int(spec.type),
            time_in_force=int(spec.time_in_force),
            quantity=spec.quantity,
            price=spec.price,
        )
        try:
            report = await self._stub.Submit(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as err:
            raise error_from_rpc(err, MATCHING_PEER) from err
        return Execution(
            report.order_id,
            OrderStatus(report.status),
            report.filled_quantity,
            report.resting_quantity,
            tuple(_trade(t) for t in report.trades),
            report.replayed,
        )

    async def cancel(self, *, symbol: str, order_id: str) -> int:
        request = matching_pb2.CancelRequest(symbol=symbol, order_id=order_id)
        try:
            reply = await self._stub.Cancel(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as err:
            raise error_from_rpc(err, MATCHING_PEER) from err
        return int(reply.canceled_quantity)


class MatchingEngines:
    """The matching engines one by one (rehoming.EngineDirectory) over the mesh's
    pool of them: the ring's owner of a symbol, and calls to one engine on its own
    channel (not routed by symbol, so a re-homing talks to the engine it means)."""

    def __init__(self, pool: EndpointPool, *, timeout_seconds: float) -> None:
        self._pool = pool
        self._timeout = timeout_seconds
        self._ports: dict[str, tuple[grpc.aio.Channel, GrpcMatching]] = {}

    def owner(self, symbol: str) -> str | None:
        picker = self._pool.picker
        return picker.owner(symbol) if isinstance(picker, RingHashPicker) else None

    def usable(self) -> frozenset[str]:
        return frozenset(member.endpoint.instance_id for member in self._pool.usable())

    def engine(self, instance_id: str) -> GrpcMatching:
        member = self._pool.members.get(instance_id)
        if member is None:
            raise Unavailable(f"{MATCHING_PEER} {instance_id} is not registered any more")
        found = self._ports.get(instance_id)
        if found is None or found[0] is not member.channel:  # new, or re-registered
            port = GrpcMatching(member.channel, timeout_seconds=self._timeout)
            found = self._ports[instance_id] = (member.channel, port)
        return found[1]

    def on_change(self, listener: Callable[[], None]) -> None:
        self._pool.on_change(lambda _pool: listener())


def _trade(trade: common_pb2.Trade) -> Trade:
    return Trade(
        trade.trade_id,
        trade.symbol,
        trade.price,
        trade.quantity,
        trade.maker_order_id,
        trade.taker_order_id,
        trade.maker_account_id,
        trade.taker_account_id,
        trade.timestamp_ns,
    )
