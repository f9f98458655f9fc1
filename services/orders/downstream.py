"""The risk and matching ports over gRPC: trading.v1 stubs on grpc.aio channels.

Each call carries a deadline (the downstream timeout), so a hung peer cannot hold
a placement; a failed call becomes the DomainError it means to the saga
(services.runtime.status.error_from_rpc: refusals keep their class, transport
failures and deadlines become Unavailable).

Reserve and Submit calls made while one is in flight are coalesced (batching.py;
under load the next batch lingers 1 ms for more callers) into one ReserveBatch
per risk owner and one SubmitBatch per engine owner, each
item answered as its own call would have been. A lone call is sent as the plain
Reserve or Submit; so is each item again when a batch reaches a server without
the batched method (UNIMPLEMENTED: mid rolling upgrade).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import grpc
from google.rpc import code_pb2, error_details_pb2, status_pb2

from clients.balancers.ring_hash import RingHashPicker
from clients.endpoint_pool import EndpointPool
from services import errors
from services.errors import Unavailable
from services.model import OrderSpec, OrderStatus
from services.orders.batching import Coalescer, key_groups, scatter
from services.orders.ports import (
    Execution,
    FillDue,
    FillOutcome,
    Hold,
    Released,
    ReleaseDue,
    ReleaseOutcome,
    ReserveDue,
    Settled,
    SubmitDue,
    Trade,
)
from services.orders.risk_batches import Outcomes, OwnerGroup, settle_by_owner
from services.runtime.status import error_from_rpc
from trading.v1 import common_pb2, matching_pb2, matching_pb2_grpc, risk_pb2, risk_pb2_grpc

RISK_PEER = "risk service"
MATCHING_PEER = "matching engine"


class GrpcRisk:
    """RiskPort on trading.v1.RiskService."""

    def __init__(self, channel: grpc.aio.Channel, *, timeout_seconds: float) -> None:
        self._stub = risk_pb2_grpc.RiskServiceStub(channel)
        self._timeout = timeout_seconds
        self._owner = ring_owner(getattr(channel, "pool", None))
        self._reserves: Coalescer[ReserveDue, Hold] = Coalescer(self._reserve_batch, what=RISK_PEER)

    async def reserve(self, *, reservation_id: str, account_id: str, spec: OrderSpec) -> Hold:
        item = ReserveDue(reservation_id, account_id, spec)
        (outcome,) = await self._reserves.run([item], within=self._timeout)
        if isinstance(outcome, errors.DomainError):
            raise outcome
        return outcome

    async def _reserve_batch(self, items: list[ReserveDue]) -> list[Hold | errors.DomainError]:
        """One ReserveBatch per owner of the items' accounts (a lone item: Reserve)."""
        outcomes: list[Hold | errors.DomainError] = [Unavailable("not reserved")] * len(items)
        groups = key_groups([item.account_id for item in items], self._owner)
        await asyncio.gather(*(self._reserve_group(items, g, outcomes) for g in groups))
        return outcomes

    async def _reserve_group(
        self,
        items: list[ReserveDue],
        group: list[int],
        outcomes: list[Hold | errors.DomainError],
    ) -> None:
        if len(group) > 1:
            request = risk_pb2.ReserveBatchRequest(account_id=items[group[0]].account_id)
            for index in group:
                request.reservations.append(_reserve_request(items[index]))
            try:
                reply = await self._stub.ReserveBatch(request, timeout=self._timeout)
            except grpc.aio.AioRpcError as err:
                if err.code() is not grpc.StatusCode.UNIMPLEMENTED:
                    scatter(outcomes, group, error_from_rpc(err, RISK_PEER), _reserved, call=_RB)
                    return
            else:
                scatter(outcomes, group, reply.reservations, _reserved, call=_RB)
                return
        # One item, or a server without ReserveBatch: each item on its own.
        await asyncio.gather(*(self._reserve_one(items, index, outcomes) for index in group))

    async def _reserve_one(
        self, items: list[ReserveDue], index: int, outcomes: list[Hold | errors.DomainError]
    ) -> None:
        try:
            reply = await self._stub.Reserve(_reserve_request(items[index]), timeout=self._timeout)
        except grpc.aio.AioRpcError as err:
            outcomes[index] = error_from_rpc(err, RISK_PEER)
        else:
            outcomes[index] = _hold(reply)

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

    async def settle(self, fills: Sequence[FillDue], releases: Sequence[ReleaseDue]) -> Settled:
        return await settle_by_owner(
            fills, releases, self._owner, lambda g, out: self._settle(g, fills, releases, out)
        )

    async def _settle(
        self,
        group: OwnerGroup,
        fills: Sequence[FillDue],
        releases: Sequence[ReleaseDue],
        outcomes: Outcomes,
    ) -> None:
        """One Settle call: the items of one owner, routed by one of its accounts."""
        request = risk_pb2.SettleRequest(account_id=group.account_id)
        for index in group.fills:
            fill = fills[index]
            request.fills.add(
                reservation_id=fill.reservation_id,
                account_id=fill.account_id,
                trade_id=fill.trade_id,
                price=fill.price,
                quantity=fill.quantity,
            )
        for index in group.releases:
            release = releases[index]
            request.releases.add(
                reservation_id=release.reservation_id, account_id=release.account_id
            )
        try:
            reply = await self._stub.Settle(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as err:
            outcomes.fail(group, error_from_rpc(err, RISK_PEER))
            return
        if len(reply.fills) != len(group.fills) or len(reply.releases) != len(group.releases):
            outcomes.fail(
                group,
                Unavailable(
                    f"{RISK_PEER} unavailable: Settle answered a different number of items"
                ),
            )
            return
        for index, settled in zip(group.fills, reply.fills, strict=True):
            fill_outcome: FillOutcome = (
                item_error(settled.error, RISK_PEER)
                if settled.WhichOneof("outcome") == "error"
                else settled.replayed
            )
            outcomes.fills[index] = fill_outcome
        for index, freed in zip(group.releases, reply.releases, strict=True):
            release_outcome: ReleaseOutcome = (
                item_error(freed.error, RISK_PEER)
                if freed.WhichOneof("outcome") == "error"
                else Released(freed.released.released_quantity, freed.released.released_cash)
            )
            outcomes.releases[index] = release_outcome


def ring_owner(pool: Any) -> Callable[[str], str | None]:
    """The owner of a key on a pool's consistent-hash ring (a mesh channel's
    EndpointPool, an HttpPool), read at each call: the ring changes with the
    endpoints. None without a ring (a plain channel: one server)."""

    def owner(key: str) -> str | None:
        picker = pool.picker if pool is not None else None
        return picker.owner(key) if isinstance(picker, RingHashPicker) else None

    return owner


_REFUSALS: dict[int, type[errors.DomainError]] = {
    code_pb2.NOT_FOUND: errors.NotFound,
    code_pb2.ALREADY_EXISTS: errors.AlreadyExists,
    code_pb2.FAILED_PRECONDITION: errors.FailedPrecondition,
    code_pb2.RESOURCE_EXHAUSTED: errors.ResourceExhausted,
}


def item_error(status: status_pb2.Status, peer: str) -> errors.DomainError:
    """The DomainError of one item's google.rpc.Status in a batched answer: what
    error_from_rpc makes of the same status on a call of its own."""
    if status.code == code_pb2.INVALID_ARGUMENT:
        violations = []
        for detail in status.details:
            bad_request = error_details_pb2.BadRequest()
            if detail.Unpack(bad_request):
                violations += [
                    errors.FieldViolation(v.field, v.description)
                    for v in bad_request.field_violations
                ]
        return errors.InvalidArgument(
            violations or [errors.FieldViolation("", status.message)],
            f"{peer} refused the request: {status.message}",
        )
    known = _REFUSALS.get(status.code)
    if known is not None:
        return known(status.message)
    name = code_pb2.Code.Name(status.code) if status.code in code_pb2.Code.values() else status.code
    return Unavailable(f"{peer} unavailable ({name}): {status.message}")


class GrpcMatching:
    """MatchingPort on trading.v1.MatchingEngine."""

    def __init__(self, channel: grpc.aio.Channel, *, timeout_seconds: float) -> None:
        self._stub = matching_pb2_grpc.MatchingEngineStub(channel)
        self._timeout = timeout_seconds
        self._owner = ring_owner(getattr(channel, "pool", None))
        self._submits: Coalescer[SubmitDue, Execution] = Coalescer(
            self._submit_batch, what=MATCHING_PEER
        )

    async def submit(self, *, order_id: str, account_id: str, spec: OrderSpec) -> Execution:
        item = SubmitDue(order_id, account_id, spec)
        (outcome,) = await self._submits.run([item], within=self._timeout)
        if isinstance(outcome, errors.DomainError):
            raise outcome
        return outcome

    async def _submit_batch(self, items: list[SubmitDue]) -> list[Execution | errors.DomainError]:
        """One SubmitBatch per owner of the items' symbols (a lone item: Submit),
        each in the order of the items."""
        outcomes: list[Execution | errors.DomainError] = [Unavailable("not submitted")] * len(items)
        groups = key_groups([item.spec.symbol for item in items], self._owner)
        await asyncio.gather(*(self._submit_group(items, g, outcomes) for g in groups))
        return outcomes

    async def _submit_group(
        self,
        items: list[SubmitDue],
        group: list[int],
        outcomes: list[Execution | errors.DomainError],
    ) -> None:
        if len(group) > 1:
            request = matching_pb2.SubmitBatchRequest(symbol=items[group[0]].spec.symbol)
            for index in group:
                request.orders.append(_submit_request(items[index]))
            try:
                reply = await self._stub.SubmitBatch(request, timeout=self._timeout)
            except grpc.aio.AioRpcError as err:
                if err.code() is not grpc.StatusCode.UNIMPLEMENTED:
                    error = error_from_rpc(err, MATCHING_PEER)
                    scatter(outcomes, group, error, _submitted, call=_SB)
                    return
            else:
                scatter(outcomes, group, reply.orders, _submitted, call=_SB)
                return
        # One item, or an engine without SubmitBatch: each item on its own, in
        # order (one symbol's orders reach its book in the order of the batch).
        for index in group:
            try:
                report = await self._stub.Submit(
                    _submit_request(items[index]), timeout=self._timeout
                )
            except grpc.aio.AioRpcError as err:
                outcomes[index] = error_from_rpc(err, MATCHING_PEER)
            else:
                outcomes[index] = _execution(report)

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


_RB = f"{RISK_PEER} ReserveBatch"
_SB = f"{MATCHING_PEER} SubmitBatch"


def _reserved(_index: int, answer: risk_pb2.ReservedItem) -> Hold | errors.DomainError:
    if answer.WhichOneof("outcome") == "error":
        return item_error(answer.error, RISK_PEER)
    return _hold(answer.reserved)


def _submitted(_index: int, answer: matching_pb2.SubmittedOrder) -> Execution | errors.DomainError:
    if answer.WhichOneof("outcome") == "error":
        return item_error(answer.error, MATCHING_PEER)
    return _execution(answer.report)


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


def _reserve_request(item: ReserveDue) -> risk_pb2.ReserveRequest:
    spec = item.spec
    return risk_pb2.ReserveRequest(
        reservation_id=item.reservation_id,
        account_id=item.account_id,
        symbol=spec.symbol,
        side=int(spec.side),
        quantity=spec.quantity,
        price=spec.price,
    )


def _hold(reply: risk_pb2.ReserveResponse) -> Hold:
    held = reply.reservation
    return Hold(held.reservation_id, held.open_quantity, held.reserved_cash, reply.replayed)


def _submit_request(item: SubmitDue) -> matching_pb2.SubmitRequest:
    spec = item.spec
    return matching_pb2.SubmitRequest(
        order_id=item.order_id,
        account_id=item.account_id,
        symbol=spec.symbol,
        side=int(spec.side),
        type=int(spec.type),
        time_in_force=int(spec.time_in_force),
        quantity=spec.quantity,
        price=spec.price,
    )


def _execution(report: matching_pb2.ExecutionReport) -> Execution:
    return Execution(
        report.order_id,
        OrderStatus(report.status),
        report.filled_quantity,
        report.resting_quantity,
        tuple(_trade(t) for t in report.trades),
        report.replayed,
    )
