"""RiskService over gRPC: converts trading.v1 messages to RiskBook calls and back.

Nothing here decides anything. Domain errors propagate to the runtime's
interceptor, which turns them into status codes with google.rpc.BadRequest
details. The proto enums share their numbers with services.model, so sides
convert with int().
"""

from __future__ import annotations

import grpc

from services.errors import DomainError
from services.risk.accounts import Account, Reservation, RiskBook
from services.runtime.status import to_rpc_status
from trading.v1 import risk_pb2, risk_pb2_grpc


class RiskServicer(risk_pb2_grpc.RiskServiceServicer):
    """trading.v1.RiskService backed by one in-process RiskBook."""

    def __init__(self, book: RiskBook) -> None:
        self._book = book

    async def Reserve(
        self, request: risk_pb2.ReserveRequest, context: grpc.aio.ServicerContext
    ) -> risk_pb2.ReserveResponse:
        return self._reserve(request)

    def _reserve(self, request: risk_pb2.ReserveRequest) -> risk_pb2.ReserveResponse:
        result = self._book.reserve(
            reservation_id=request.reservation_id,
            account_id=request.account_id,
            symbol=request.symbol,
            side=int(request.side),
            quantity=request.quantity,
            price=request.price,
        )
        return risk_pb2.ReserveResponse(
            reservation=reservation_to_proto(result.reservation), replayed=result.replayed
        )

    async def Release(
        self, request: risk_pb2.ReleaseRequest, context: grpc.aio.ServicerContext
    ) -> risk_pb2.ReleaseResponse:
        result = self._book.release(request.reservation_id, request.account_id)
        return risk_pb2.ReleaseResponse(
            released_quantity=result.released_quantity, released_cash=result.released_cash
        )

    async def ApplyFill(
        self, request: risk_pb2.ApplyFillRequest, context: grpc.aio.ServicerContext
    ) -> risk_pb2.ApplyFillResponse:
        result = self._book.apply_fill(
            reservation_id=request.reservation_id,
            trade_id=request.trade_id,
            price=request.price,
            quantity=request.quantity,
            account_id=request.account_id,
        )
        return risk_pb2.ApplyFillResponse(
            account=account_to_proto(result.account), replayed=result.replayed
        )

    async def Settle(
        self, request: risk_pb2.SettleRequest, context: grpc.aio.ServicerContext
    ) -> risk_pb2.SettleResponse:
        # Each item as its own ApplyFill or Release; a refusal is that item's status.
        # Fills first: a release gives back all a reservation holds, so a fill after
        # it would be refused.
        reply = risk_pb2.SettleResponse()
        for fill in request.fills:
            try:
                result = self._book.apply_fill(
                    reservation_id=fill.reservation_id,
                    trade_id=fill.trade_id,
                    price=fill.price,
                    quantity=fill.quantity,
                    account_id=fill.account_id,
                )
            except DomainError as err:
                reply.fills.add(error=to_rpc_status(err))
            else:
                reply.fills.add(replayed=result.replayed)
        for release in request.releases:
            try:
                freed = self._book.release(release.reservation_id, release.account_id)
            except DomainError as err:
                reply.releases.add(error=to_rpc_status(err))
            else:
                reply.releases.add(
                    released=risk_pb2.ReleaseResponse(
                        released_quantity=freed.released_quantity,
                        released_cash=freed.released_cash,
                    )
                )
        return reply

    async def ReserveBatch(
        self, request: risk_pb2.ReserveBatchRequest, context: grpc.aio.ServicerContext
    ) -> risk_pb2.ReserveBatchResponse:
        # Each item as its own Reserve, in request order; a refusal is that item's status.
        reply = risk_pb2.ReserveBatchResponse()
        for item in request.reservations:
            try:
                reserved = self._reserve(item)
            except DomainError as err:
                reply.reservations.add(error=to_rpc_status(err))
            else:
                reply.reservations.add(reserved=reserved)
        return reply

    async def GetAccount(
        self, request: risk_pb2.GetAccountRequest, context: grpc.aio.ServicerContext
    ) -> risk_pb2.Account:
        return account_to_proto(self._book.account(request.account_id))


def reservation_to_proto(reservation: Reservation) -> risk_pb2.Reservation:
    return risk_pb2.Reservation(
        reservation_id=reservation.reservation_id,
        account_id=reservation.account_id,
        symbol=reservation.symbol,
        side=int(reservation.side),  # type: ignore[arg-type]  # same numbers as trading.v1.Side
        open_quantity=reservation.open_quantity,
        price=reservation.price,
        reserved_cash=reservation.reserved_cash,
    )


def account_to_proto(account: Account) -> risk_pb2.Account:
    return risk_pb2.Account(
        account_id=account.account_id,
        cash=account.cash,
        reserved_cash=account.reserved_cash,
        buying_power=account.buying_power,
        positions=[
            risk_pb2.Position(
                symbol=p.symbol,
                quantity=p.quantity,
                reserved_buy=p.reserved_buy,
                reserved_sell=p.reserved_sell,
            )
            for p in account.positions
        ],
        limits=risk_pb2.RiskLimits(
            max_order_quantity=account.limits.max_order_quantity,
            max_order_notional=account.limits.max_order_notional,
            max_position=account.limits.max_position,
        ),
    )
