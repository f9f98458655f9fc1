"""The risk and matching ports over REST: JSON calls through the HTTP mesh.

The REST twin of downstream.py, with the same peer names and the same errors: a
problem document becomes the DomainError it names
(services.runtime.rest.problems.error_from_problem: refusals keep their class,
5xx and shedding become Unavailable), and no answer at all (unreachable, timed
out) is Unavailable. Bodies mirror the proto messages (enums by value name).
Concurrent reserves and submits are coalesced into `POST /v1/reservations:batch`
and `POST /v1/books:submitBatch` calls per owner, as the gRPC ports coalesce
them into ReserveBatch and SubmitBatch (a lone one goes as the plain call).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote

import orjson

from clients.balancers.ring_hash import RingHashPicker
from clients.http_pool import HttpMember, HttpPool, HttpUnreachable
from services.errors import DomainError, Unavailable
from services.model import OrderSpec, OrderStatus
from services.orders.batching import Coalescer, key_groups, scatter
from services.orders.downstream import MATCHING_PEER, RISK_PEER, ring_owner
from services.orders.ports import (
    Execution,
    FillDue,
    Hold,
    Released,
    ReleaseDue,
    ReserveDue,
    Settled,
    SubmitDue,
    Trade,
)
from services.orders.risk_batches import Outcomes, OwnerGroup, settle_by_owner
from services.runtime.rest.problems import error_from_problem
from trading.v1 import common_pb2

# Enum value <-> proto value name, from the generated wrappers, once.
SIDE_NAMES = {number: common_pb2.Side.Name(number) for number in common_pb2.Side.values()}
TYPE_NAMES = {number: common_pb2.OrderType.Name(number) for number in common_pb2.OrderType.values()}
TIF_NAMES = {
    number: common_pb2.TimeInForce.Name(number) for number in common_pb2.TimeInForce.values()
}
STATUS_VALUES = {
    common_pb2.OrderStatus.Name(number): number for number in common_pb2.OrderStatus.values()
}


def _segment(text: str) -> str:
    """A path segment: ids are [A-Za-z0-9._-] when valid; anything else is
    escaped so it reaches the callee to be refused, not misrouted."""
    return text if text.isalnum() else quote(text, safe="")


async def _call(
    pool: HttpPool,
    peer: str,
    method: str,
    path: str,
    *,
    key: str | None,
    body: dict[str, Any] | None,
    timeout_seconds: float,
    member: HttpMember | None = None,
) -> dict[str, Any]:
    """The JSON answer of one call, or the DomainError it means."""
    try:
        status, payload = await pool.request(
            method,
            path,
            key=key,
            body=None if body is None else orjson.dumps(body),
            timeout_seconds=timeout_seconds,
            member=member,
        )
    except HttpUnreachable as exc:
        raise Unavailable(f"{peer} unavailable: {exc.reason}") from None
    if status != 200:
        raise error_from_problem(status, payload, peer)
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise Unavailable(f"{peer} unavailable: its answer is not JSON") from None


class HttpRisk:
    """RiskPort on the RiskService's REST routes, routed by account."""

    def __init__(self, pool: HttpPool, *, timeout_seconds: float) -> None:
        self._pool = pool
        self._timeout = timeout_seconds
        self._owner = ring_owner(pool)
        self._reserves: Coalescer[ReserveDue, Hold] = Coalescer(self._reserve_batch, what=RISK_PEER)

    async def reserve(self, *, reservation_id: str, account_id: str, spec: OrderSpec) -> Hold:
        item = ReserveDue(reservation_id, account_id, spec)
        (outcome,) = await self._reserves.run([item], within=self._timeout)
        if isinstance(outcome, DomainError):
            raise outcome
        return outcome

    async def _reserve_batch(self, items: list[ReserveDue]) -> list[Hold | DomainError]:
        """One POST /v1/reservations:batch per owner of the items' accounts (a lone
        item: POST /v1/reservations)."""
        outcomes: list[Hold | DomainError] = [Unavailable("not reserved")] * len(items)
        groups = key_groups([item.account_id for item in items], self._owner)
        await asyncio.gather(*(self._reserve_group(items, g, outcomes) for g in groups))
        return outcomes

    async def _reserve_group(
        self, items: list[ReserveDue], group: list[int], outcomes: list[Hold | DomainError]
    ) -> None:
        first = items[group[0]]
        try:
            if len(group) == 1:
                reply = await self._post("/v1/reservations", first.account_id, _reserve_body(first))
                outcomes[group[0]] = _hold(reply, first.reservation_id)
                return
            body = {
                "account_id": first.account_id,
                "reservations": [_reserve_body(items[i]) for i in group],
            }
            reply = await self._post("/v1/reservations:batch", first.account_id, body)
        except DomainError as err:
            for index in group:
                outcomes[index] = err
            return

        def reserved(index: int, answer: dict[str, Any]) -> Hold | DomainError:
            error = answer.get("error")
            if error is not None:
                return _item_error(error)
            return _hold(answer.get("reserved") or {}, items[index].reservation_id)

        scatter(outcomes, group, reply.get("reservations") or [], reserved, call=_RB)

    async def _post(self, path: str, key: str, body: dict[str, Any]) -> dict[str, Any]:
        return await _call(
            self._pool,
            RISK_PEER,
            "POST",
            path,
            key=key,
            body=body,
            timeout_seconds=self._timeout,
        )

    async def release(self, reservation_id: str, account_id: str) -> Released:
        reply = await _call(
            self._pool,
            RISK_PEER,
            "POST",
            f"/v1/reservations/{_segment(reservation_id)}:release",
            key=account_id,
            body={"account_id": account_id},
            timeout_seconds=self._timeout,
        )
        return Released(reply.get("released_quantity", 0), reply.get("released_cash", 0))

    async def apply_fill(
        self, *, reservation_id: str, account_id: str, trade_id: str, price: int, quantity: int
    ) -> bool:
        reply = await _call(
            self._pool,
            RISK_PEER,
            "POST",
            f"/v1/reservations/{_segment(reservation_id)}/fills",
            key=account_id,
            body={
                "account_id": account_id,
                "trade_id": trade_id,
                "price": price,
                "quantity": quantity,
            },
            timeout_seconds=self._timeout,
        )
        return bool(reply.get("replayed", False))

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
        """One POST /v1/reservations:settle: the items of one owner, routed by one
        of its accounts."""
        body = {
            "account_id": group.account_id,
            "fills": [
                {
                    "reservation_id": fills[i].reservation_id,
                    "account_id": fills[i].account_id,
                    "trade_id": fills[i].trade_id,
                    "price": fills[i].price,
                    "quantity": fills[i].quantity,
                }
                for i in group.fills
            ],
            "releases": [
                {"reservation_id": releases[i].reservation_id, "account_id": releases[i].account_id}
                for i in group.releases
            ],
        }
        try:
            reply = await _call(
                self._pool,
                RISK_PEER,
                "POST",
                "/v1/reservations:settle",
                key=group.account_id,
                body=body,
                timeout_seconds=self._timeout,
            )
        except DomainError as err:
            outcomes.fail(group, err)
            return
        settled_fills = reply.get("fills") or []
        settled_releases = reply.get("releases") or []
        if len(settled_fills) != len(group.fills) or len(settled_releases) != len(group.releases):
            outcomes.fail(
                group, Unavailable(f"{RISK_PEER} unavailable: Settle answered another item count")
            )
            return
        for index, item in zip(group.fills, settled_fills, strict=True):
            error = item.get("error")
            outcomes.fills[index] = (
                _item_error(error) if error is not None else bool(item.get("replayed", False))
            )
        for index, item in zip(group.releases, settled_releases, strict=True):
            error = item.get("error")
            freed = item.get("released") or {}
            outcomes.releases[index] = (
                _item_error(error)
                if error is not None
                else Released(freed.get("released_quantity", 0), freed.get("released_cash", 0))
            )


_RB = f"{RISK_PEER} ReserveBatch"
_SB = f"{MATCHING_PEER} SubmitBatch"


def _item_error(problem: Any, peer: str = RISK_PEER) -> DomainError:
    """One item's problem document in a batched answer, as the DomainError a call
    of its own would have raised."""
    status = problem.get("status", 500) if isinstance(problem, dict) else 500
    return error_from_problem(status, problem if isinstance(problem, dict) else None, peer)


def _reserve_body(item: ReserveDue) -> dict[str, Any]:
    spec = item.spec
    return {
        "reservation_id": item.reservation_id,
        "account_id": item.account_id,
        "symbol": spec.symbol,
        "side": SIDE_NAMES[int(spec.side)],
        "quantity": spec.quantity,
        "price": spec.price,
    }


def _hold(reply: dict[str, Any], reservation_id: str) -> Hold:
    held = reply.get("reservation") or {}
    return Hold(
        held.get("reservation_id", reservation_id),
        held.get("open_quantity", 0),
        held.get("reserved_cash", 0),
        bool(reply.get("replayed", False)),
    )


def _submit_body(item: SubmitDue) -> dict[str, Any]:
    spec = item.spec
    return {
        "order_id": item.order_id,
        "account_id": item.account_id,
        "symbol": spec.symbol,
        "side": SIDE_NAMES[int(spec.side)],
        "type": TYPE_NAMES[int(spec.type)],
        "time_in_force": TIF_NAMES[int(spec.time_in_force)],
        "quantity": spec.quantity,
        "price": spec.price,
    }


def _execution(report: dict[str, Any], order_id: str) -> Execution:
    return Execution(
        report.get("order_id", order_id),
        OrderStatus(STATUS_VALUES[report["status"]]),
        report.get("filled_quantity", 0),
        report.get("resting_quantity", 0),
        tuple(_trade(t) for t in report.get("trades") or ()),
        bool(report.get("replayed", False)),
    )


class HttpMatching:
    """MatchingPort on the MatchingEngine's REST routes, routed by symbol, or
    pinned to one engine (`instance_id`) for re-homing."""

    def __init__(
        self, pool: HttpPool, *, timeout_seconds: float, instance_id: str | None = None
    ) -> None:
        self._pool = pool
        self._timeout = timeout_seconds
        self._instance_id = instance_id
        # Pinned to one engine: every item goes there, one group.
        self._owner = ring_owner(pool if instance_id is None else None)
        self._submits: Coalescer[SubmitDue, Execution] = Coalescer(
            self._submit_batch, what=MATCHING_PEER
        )

    def _member(self) -> HttpMember | None:
        if self._instance_id is None:
            return None
        member = self._pool.members.get(self._instance_id)
        if member is None:
            raise Unavailable(f"{MATCHING_PEER} {self._instance_id} is not registered any more")
        return member

    async def submit(self, *, order_id: str, account_id: str, spec: OrderSpec) -> Execution:
        item = SubmitDue(order_id, account_id, spec)
        (outcome,) = await self._submits.run([item], within=self._timeout)
        if isinstance(outcome, DomainError):
            raise outcome
        return outcome

    async def _submit_batch(self, items: list[SubmitDue]) -> list[Execution | DomainError]:
        """One POST /v1/books:submitBatch per owner of the items' symbols (a lone
        item: POST /v1/books/{symbol}/orders), each in the order of the items."""
        outcomes: list[Execution | DomainError] = [Unavailable("not submitted")] * len(items)
        groups = key_groups([item.spec.symbol for item in items], self._owner)
        await asyncio.gather(*(self._submit_group(items, g, outcomes) for g in groups))
        return outcomes

    async def _submit_group(
        self, items: list[SubmitDue], group: list[int], outcomes: list[Execution | DomainError]
    ) -> None:
        first = items[group[0]]
        symbol = first.spec.symbol
        try:
            member = self._member()
            if len(group) == 1:
                report = await self._post(
                    f"/v1/books/{_segment(symbol)}/orders", symbol, _submit_body(first), member
                )
                outcomes[group[0]] = _execution(report, first.order_id)
                return
            body = {"symbol": symbol, "orders": [_submit_body(items[i]) for i in group]}
            reply = await self._post("/v1/books:submitBatch", symbol, body, member)
        except DomainError as err:
            for index in group:
                outcomes[index] = err
            return

        def submitted(index: int, answer: dict[str, Any]) -> Execution | DomainError:
            error = answer.get("error")
            if error is not None:
                return _item_error(error, MATCHING_PEER)
            return _execution(answer.get("report") or {}, items[index].order_id)

        scatter(outcomes, group, reply.get("orders") or [], submitted, call=_SB)

    async def _post(
        self, path: str, key: str, body: dict[str, Any], member: HttpMember | None
    ) -> dict[str, Any]:
        return await _call(
            self._pool,
            MATCHING_PEER,
            "POST",
            path,
            key=key,
            body=body,
            timeout_seconds=self._timeout,
            member=member,
        )

    async def cancel(self, *, symbol: str, order_id: str) -> int:
        reply = await _call(
            self._pool,
            MATCHING_PEER,
            "POST",
            f"/v1/books/{_segment(symbol)}/orders/{_segment(order_id)}:cancel",
            key=symbol,
            body=None,
            timeout_seconds=self._timeout,
            member=self._member(),
        )
        return int(reply.get("canceled_quantity", 0))


class HttpMatchingEngines:
    """The matching engines one by one (rehoming.EngineDirectory) over the REST
    pool: the ring's owner of a symbol, and calls pinned to one engine."""

    def __init__(self, pool: HttpPool, *, timeout_seconds: float) -> None:
        self._pool = pool
        self._timeout = timeout_seconds
        self._ports: dict[str, HttpMatching] = {}

    def owner(self, symbol: str) -> str | None:
        picker = self._pool.picker
        return picker.owner(symbol) if isinstance(picker, RingHashPicker) else None

    def usable(self) -> frozenset[str]:
        return frozenset(member.endpoint.instance_id for member in self._pool.usable())

    def engine(self, instance_id: str) -> HttpMatching:
        # Pinned by instance id: calls go to whatever address it has now, and
        # raise Unavailable once it is gone.
        found = self._ports.get(instance_id)
        if found is None:
            found = self._ports[instance_id] = HttpMatching(
                self._pool, timeout_seconds=self._timeout, instance_id=instance_id
            )
        return found

    def on_change(self, listener: Callable[[], None]) -> None:
        self._pool.on_change(lambda _pool: listener())


def _trade(trade: dict[str, Any]) -> Trade:
    return Trade(
        trade.get("trade_id", ""),
        trade.get("symbol", ""),
        trade.get("price", 0),
        trade.get("quantity", 0),
        trade.get("maker_order_id", ""),
        trade.get("taker_order_id", ""),
        trade.get("maker_account_id", ""),
        trade.get("taker_account_id", ""),
        trade.get("timestamp_ns", 0),
    )
