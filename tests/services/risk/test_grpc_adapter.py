"""RiskService over a real grpc.aio server: messages convert both ways, errors map to codes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2
from grpc_status import rpc_status

from clients.channel_options import plaintext_channel
from services.risk.app import RiskSettings, build_services
from services.runtime.server import serving
from trading.v1 import common_pb2, risk_pb2, risk_pb2_grpc

BUY, SELL = common_pb2.SIDE_BUY, common_pb2.SIDE_SELL


@pytest.fixture
async def risk(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[risk_pb2_grpc.RiskServiceStub]:
    monkeypatch.delenv("TRADEMESH_INSTRUMENTS", raising=False)  # the built-in catalog
    settings = RiskSettings(
        port=0,
        initial_cash=1_000_000,
        max_order_quantity=1_000,
        max_order_notional=2_000_000,
        max_position=5_000,
    )
    async with serving(build_services, settings) as address, plaintext_channel(address) as channel:
        yield risk_pb2_grpc.RiskServiceStub(channel)


def order(rid: str = "o-1", **fields: object) -> risk_pb2.ReserveRequest:
    base: dict[str, object] = {
        "reservation_id": rid,
        "account_id": "acc-1",
        "symbol": "AAPL",
        "side": BUY,
        "quantity": 10,
        "price": 1_000,
    }
    base.update(fields)
    return risk_pb2.ReserveRequest(**base)  # type: ignore[arg-type]


async def test_reserve_fill_release_round_trip(risk: risk_pb2_grpc.RiskServiceStub) -> None:
    reply = await risk.Reserve(order(quantity=10, price=1_000))
    assert not reply.replayed
    assert reply.reservation == risk_pb2.Reservation(
        reservation_id="o-1",
        account_id="acc-1",
        symbol="AAPL",
        side=BUY,
        open_quantity=10,
        price=1_000,
        reserved_cash=10_000,
    )
    assert (await risk.Reserve(order(quantity=10, price=1_000))).replayed

    fill = risk_pb2.ApplyFillRequest(reservation_id="o-1", trade_id="t-1", price=990, quantity=4)
    filled = await risk.ApplyFill(fill)
    assert not filled.replayed
    assert (await risk.ApplyFill(fill)).replayed

    released = await risk.Release(risk_pb2.ReleaseRequest(reservation_id="o-1"))
    assert (released.released_quantity, released.released_cash) == (6, 6_000)
    again = await risk.Release(risk_pb2.ReleaseRequest(reservation_id="o-1"))
    assert (again.released_quantity, again.released_cash) == (0, 0)

    account = await risk.GetAccount(risk_pb2.GetAccountRequest(account_id="acc-1"))
    assert account == risk_pb2.Account(
        account_id="acc-1",
        cash=1_000_000 - 3_960,
        reserved_cash=0,
        buying_power=1_000_000 - 3_960,
        positions=[risk_pb2.Position(symbol="AAPL", quantity=4)],
        limits=risk_pb2.RiskLimits(
            max_order_quantity=1_000, max_order_notional=2_000_000, max_position=5_000
        ),
    )
    assert filled.account == risk_pb2.Account(
        account_id="acc-1",
        cash=1_000_000 - 3_960,
        reserved_cash=6_000,
        buying_power=1_000_000 - 9_960,
        positions=[risk_pb2.Position(symbol="AAPL", quantity=4, reserved_buy=6)],
        limits=account.limits,
    )


async def test_market_sell_reserves_at_band_top(risk: risk_pb2_grpc.RiskServiceStub) -> None:
    reply = await risk.Reserve(order(side=SELL, quantity=2, price=0))
    assert (reply.reservation.side, reply.reservation.price) == (SELL, 1_000_000)
    assert reply.reservation.reserved_cash == 0


async def test_invalid_argument_carries_bad_request(risk: risk_pb2_grpc.RiskServiceStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as excinfo:
        await risk.Reserve(order(rid="", symbol="NOPE", side=0, quantity=-1))
    assert excinfo.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(excinfo.value)
    assert status is not None
    bad_request = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad_request)
    fields = {v.field: v.description for v in bad_request.field_violations}
    assert set(fields) == {"reservation_id", "symbol", "side", "quantity"}
    assert fields["side"] == "must be SIDE_BUY or SIDE_SELL"


@pytest.mark.parametrize(
    "request_",
    [
        risk_pb2.ReleaseRequest(reservation_id="bad id"),
        risk_pb2.ApplyFillRequest(reservation_id="o-1", trade_id="t", price=0, quantity=1),
        risk_pb2.GetAccountRequest(account_id=""),
    ],
    ids=["Release", "ApplyFill", "GetAccount"],
)
async def test_invalid_argument_on_every_method(
    risk: risk_pb2_grpc.RiskServiceStub, request_: object
) -> None:
    method = {
        risk_pb2.ReleaseRequest: risk.Release,
        risk_pb2.ApplyFillRequest: risk.ApplyFill,
        risk_pb2.GetAccountRequest: risk.GetAccount,
    }[type(request_)]
    with pytest.raises(grpc.aio.AioRpcError) as excinfo:
        await method(request_)
    assert excinfo.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(excinfo.value)
    assert status is not None and len(status.details) == 1


async def test_limit_breach_is_failed_precondition(risk: risk_pb2_grpc.RiskServiceStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as excinfo:
        await risk.Reserve(order(quantity=1_001, price=100))
    assert excinfo.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert "max_order_quantity" in (excinfo.value.details() or "")
    assert "acc-1" in (excinfo.value.details() or "")


async def test_tombstone_is_failed_precondition(risk: risk_pb2_grpc.RiskServiceStub) -> None:
    released = await risk.Release(risk_pb2.ReleaseRequest(reservation_id="late"))
    assert (released.released_quantity, released.released_cash) == (0, 0)
    with pytest.raises(grpc.aio.AioRpcError) as excinfo:
        await risk.Reserve(order(rid="late"))
    assert excinfo.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert excinfo.value.details() == "reservation late was already released; use a new id"


async def test_not_found(risk: risk_pb2_grpc.RiskServiceStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as excinfo:
        await risk.GetAccount(risk_pb2.GetAccountRequest(account_id="nobody"))
    assert excinfo.value.code() is grpc.StatusCode.NOT_FOUND
    assert excinfo.value.details() == (
        "account nobody has no activity yet; accounts open with their first order"
    )
    with pytest.raises(grpc.aio.AioRpcError) as excinfo:
        await risk.ApplyFill(
            risk_pb2.ApplyFillRequest(reservation_id="nope", trade_id="t", price=1, quantity=1)
        )
    assert excinfo.value.code() is grpc.StatusCode.NOT_FOUND


async def test_reused_id_is_already_exists(risk: risk_pb2_grpc.RiskServiceStub) -> None:
    await risk.Reserve(order(quantity=10))
    with pytest.raises(grpc.aio.AioRpcError) as excinfo:
        await risk.Reserve(order(quantity=11))
    assert excinfo.value.code() is grpc.StatusCode.ALREADY_EXISTS
    assert "o-1" in (excinfo.value.details() or "")


async def test_settle_answers_each_item_as_its_own_call_would(
    risk: risk_pb2_grpc.RiskServiceStub,
) -> None:
    await risk.Reserve(order("o-1", quantity=10, price=1_000))
    await risk.Reserve(order("o-2", account_id="acc-2", side=SELL, quantity=5, price=900))

    def fill(rid: str, trade: str, price: int, qty: int) -> risk_pb2.ApplyFillRequest:
        return risk_pb2.ApplyFillRequest(
            reservation_id=rid, trade_id=trade, price=price, quantity=qty
        )

    reply = await risk.Settle(
        risk_pb2.SettleRequest(
            account_id="acc-1",
            fills=[
                fill("o-1", "t-1", 990, 4),
                fill("o-2", "t-1", 990, 4),
                fill("o-1", "t-1", 990, 4),  # a retry: replayed
                fill("nope", "t-2", 990, 1),  # never reserved
                fill("o-1", "t-3", 0, 1),  # invalid
                fill("o-1", "t-4", 1_001, 1),  # above the reserved price
            ],
            # After every fill: o-1's release gives back its 6 still open.
            releases=[risk_pb2.ReleaseRequest(reservation_id="o-1"), risk_pb2.ReleaseRequest()],
        )
    )

    outcomes = [f.WhichOneof("outcome") for f in reply.fills]
    assert outcomes == ["replayed", "replayed", "replayed", "error", "error", "error"]
    assert [f.replayed for f in reply.fills[:3]] == [False, False, True]
    codes = [f.error.code for f in reply.fills[3:]]
    assert codes == [code_pb2.NOT_FOUND, code_pb2.INVALID_ARGUMENT, code_pb2.FAILED_PRECONDITION]
    assert reply.fills[3].error.message == (
        "reservation nope does not exist; a fill must follow a Reserve"
    )
    bad_request = error_details_pb2.BadRequest()
    assert reply.fills[4].error.details[0].Unpack(bad_request)
    assert [v.field for v in bad_request.field_violations] == ["price"]

    released, invalid = reply.releases
    assert (released.released.released_quantity, released.released.released_cash) == (6, 6_000)
    assert invalid.error.code == code_pb2.INVALID_ARGUMENT
    acc1 = await risk.GetAccount(risk_pb2.GetAccountRequest(account_id="acc-1"))
    assert (acc1.cash, acc1.reserved_cash) == (1_000_000 - 3_960, 0)
    acc2 = await risk.GetAccount(risk_pb2.GetAccountRequest(account_id="acc-2"))
    assert [(p.quantity, p.reserved_sell) for p in acc2.positions] == [(-4, 1)]
