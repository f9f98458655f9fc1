"""RiskService over HTTP/JSON: request models to RiskBook calls, results to dicts.

Nothing here decides anything, as in grpc_adapter.py: the bodies mirror the
trading.v1 messages (proto field names, enums by value name, int64 as numbers)
and domain errors propagate to the runtime, which answers problem documents.

    POST /v1/reservations                               Reserve
    POST /v1/reservations/{reservation_id}:release      Release
    POST /v1/reservations/{reservation_id}/fills        ApplyFill
    POST /v1/reservations:settle                        Settle
    POST /v1/reservations:batch                         ReserveBatch
    GET  /v1/accounts/{account_id}                      GetAccount

Settle and ReserveBatch answer each item with its outcome, a refused item with its problem
document (as the single call would have answered it) under "error".
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body
from pydantic import BaseModel, ConfigDict

from services.errors import DomainError
from services.risk.accounts import Account, Reservation, RiskBook
from services.runtime.rest.enums import SideName
from services.runtime.rest.problems import error_body
from services.runtime.rest.responses import JsonResponse
from trading.v1 import common_pb2

_side_value = common_pb2.Side.Value
_side_name = common_pb2.Side.Name


class ReserveRequest(BaseModel):
    """trading.v1.ReserveRequest: holds cash or position for one order."""

    model_config = ConfigDict(extra="forbid")

    reservation_id: str = ""
    account_id: str = ""
    symbol: str = ""
    side: SideName = "SIDE_UNSPECIFIED"
    quantity: int = 0
    price: int = 0


class ReleaseRequest(BaseModel):
    """trading.v1.ReleaseRequest without the id, which is in the path."""

    model_config = ConfigDict(extra="forbid")

    account_id: str = ""


class ApplyFillRequest(BaseModel):
    """trading.v1.ApplyFillRequest without the reservation id, which is in the path."""

    model_config = ConfigDict(extra="forbid")

    account_id: str = ""
    trade_id: str = ""
    price: int = 0
    quantity: int = 0


class SettleFill(BaseModel):
    """trading.v1.ApplyFillRequest, one fill of a Settle call."""

    model_config = ConfigDict(extra="forbid")

    reservation_id: str = ""
    account_id: str = ""
    trade_id: str = ""
    price: int = 0
    quantity: int = 0


class SettleRelease(BaseModel):
    """trading.v1.ReleaseRequest, one release of a Settle call."""

    model_config = ConfigDict(extra="forbid")

    reservation_id: str = ""
    account_id: str = ""


class SettleRequest(BaseModel):
    """trading.v1.SettleRequest: fills, then releases, each answered on its own."""

    model_config = ConfigDict(extra="forbid")

    account_id: str = ""
    fills: list[SettleFill] = []
    releases: list[SettleRelease] = []


class ReserveBatchRequest(BaseModel):
    """trading.v1.ReserveBatchRequest: reservations, each answered on its own."""

    model_config = ConfigDict(extra="forbid")

    account_id: str = ""
    reservations: list[ReserveRequest] = []


def reservation_dict(reservation: Reservation) -> dict[str, Any]:
    return {
        "reservation_id": reservation.reservation_id,
        "account_id": reservation.account_id,
        "symbol": reservation.symbol,
        "side": _side_name(int(reservation.side)),
        "open_quantity": reservation.open_quantity,
        "price": reservation.price,
        "reserved_cash": reservation.reserved_cash,
    }


def account_dict(account: Account) -> dict[str, Any]:
    limits = account.limits
    return {
        "account_id": account.account_id,
        "cash": account.cash,
        "reserved_cash": account.reserved_cash,
        "buying_power": account.buying_power,
        "positions": [
            {
                "symbol": p.symbol,
                "quantity": p.quantity,
                "reserved_buy": p.reserved_buy,
                "reserved_sell": p.reserved_sell,
            }
            for p in account.positions
        ],
        "limits": {
            "max_order_quantity": limits.max_order_quantity,
            "max_order_notional": limits.max_order_notional,
            "max_position": limits.max_position,
        },
    }


def risk_router(book: RiskBook) -> APIRouter:
    """The RiskService routes over one in-process RiskBook."""
    router = APIRouter()

    @router.post("/v1/reservations", name="Reserve", summary="Reserve cash or position")
    async def reserve(request: ReserveRequest) -> JsonResponse:
        result = book.reserve(
            reservation_id=request.reservation_id,
            account_id=request.account_id,
            symbol=request.symbol,
            side=_side_value(request.side),
            quantity=request.quantity,
            price=request.price,
        )
        return JsonResponse(
            {"reservation": reservation_dict(result.reservation), "replayed": result.replayed}
        )

    @router.post(
        "/v1/reservations/{reservation_id}:release",
        name="Release",
        summary="Release what a reservation still holds",
    )
    async def release(
        reservation_id: str, request: Annotated[ReleaseRequest | None, Body()] = None
    ) -> JsonResponse:
        result = book.release(reservation_id, request.account_id if request else "")
        return JsonResponse(
            {
                "released_quantity": result.released_quantity,
                "released_cash": result.released_cash,
            }
        )

    @router.post(
        "/v1/reservations/{reservation_id}/fills",
        name="ApplyFill",
        summary="Apply a fill against a reservation (idempotent by trade id)",
    )
    async def apply_fill(reservation_id: str, request: ApplyFillRequest) -> JsonResponse:
        result = book.apply_fill(
            reservation_id=reservation_id,
            trade_id=request.trade_id,
            price=request.price,
            quantity=request.quantity,
            account_id=request.account_id,
        )
        return JsonResponse({"account": account_dict(result.account), "replayed": result.replayed})

    @router.post(
        "/v1/reservations:settle",
        name="Settle",
        summary="Apply fills, then release reservations, each answered on its own",
    )
    async def settle(request: SettleRequest) -> JsonResponse:
        # As the gRPC Settle: fills first, a refusal is that item's problem document.
        fills: list[dict[str, Any]] = []
        for fill in request.fills:
            try:
                result = book.apply_fill(
                    reservation_id=fill.reservation_id,
                    trade_id=fill.trade_id,
                    price=fill.price,
                    quantity=fill.quantity,
                    account_id=fill.account_id,
                )
            except DomainError as err:
                fills.append({"error": error_body(err)})
            else:
                fills.append({"replayed": result.replayed})
        releases: list[dict[str, Any]] = []
        for release in request.releases:
            try:
                freed = book.release(release.reservation_id, release.account_id)
            except DomainError as err:
                releases.append({"error": error_body(err)})
            else:
                released = {
                    "released_quantity": freed.released_quantity,
                    "released_cash": freed.released_cash,
                }
                releases.append({"released": released})
        return JsonResponse({"fills": fills, "releases": releases})

    @router.post(
        "/v1/reservations:batch",
        name="ReserveBatch",
        summary="Reserve for many orders, each answered on its own",
    )
    async def reserve_batch(request: ReserveBatchRequest) -> JsonResponse:
        # As the gRPC ReserveBatch: in request order, a refusal is that item's problem.
        items: list[dict[str, Any]] = []
        for item in request.reservations:
            try:
                result = book.reserve(
                    reservation_id=item.reservation_id,
                    account_id=item.account_id,
                    symbol=item.symbol,
                    side=_side_value(item.side),
                    quantity=item.quantity,
                    price=item.price,
                )
            except DomainError as err:
                items.append({"error": error_body(err)})
            else:
                reserved = {
                    "reservation": reservation_dict(result.reservation),
                    "replayed": result.replayed,
                }
                items.append({"reserved": reserved})
        return JsonResponse({"reservations": items})

    @router.get("/v1/accounts/{account_id}", name="GetAccount", summary="An account's state")
    async def get_account(account_id: str) -> JsonResponse:
        return JsonResponse(account_dict(book.account(account_id)))

    return router
