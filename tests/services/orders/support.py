"""In-process ports over the real RiskBook and MatchingEngine, with injectable faults,
and a request builder, shared by the OrderService tests."""

from __future__ import annotations

import asyncio
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from typing import TypeVar

from clients.balancers.endpoint import EndpointStats
from clients.balancers.ring_hash import RingHashPicker
from services.errors import DomainError, Unavailable
from services.instruments import InstrumentCatalog
from services.matching.engine import MatchingEngine
from services.model import OrderSpec
from services.orders.placement import OrderRequest
from services.orders.ports import (
    Execution,
    FillDue,
    FillOutcome,
    Hold,
    Released,
    ReleaseDue,
    ReleaseOutcome,
    Settled,
    Trade,
)
from services.risk.accounts import RiskBook

T = TypeVar("T")
GRACE_SECONDS = 10.0


class Faults:
    """Planned failures per method: raised before the call (it never happened) or
    after it (it happened, but the reply was lost), and gates that hold a reply."""

    def __init__(self) -> None:
        self._plans: dict[str, deque[tuple[DomainError, bool]]] = defaultdict(deque)
        self._gates: dict[str, deque[asyncio.Event]] = defaultdict(deque)
        self.calls: list[str] = []

    def fail(self, method: str, error: DomainError, *, after_call: bool = False, times: int = 1):
        self._plans[method].extend([(error, after_call)] * times)

    def hold(self, method: str) -> asyncio.Event:
        """The next call of `method` runs, then waits for the returned event."""
        gate = asyncio.Event()
        self._gates[method].append(gate)
        return gate

    async def run(self, method: str, call: Callable[[], T]) -> T:
        self.calls.append(method)
        await asyncio.sleep(0)  # a network hop: let other tasks run
        plan = self._plans[method].popleft() if self._plans[method] else None
        if plan is not None and not plan[1]:
            raise plan[0]
        result = call()
        if self._gates[method]:
            await self._gates[method].popleft().wait()
        if plan is not None:
            raise plan[0]
        return result


class InProcessRisk:
    """RiskPort over a RiskBook."""

    def __init__(self, book: RiskBook) -> None:
        self.book = book
        self.faults = Faults()
        self.settle_calls: list[int] = []

    async def reserve(self, *, reservation_id: str, account_id: str, spec: OrderSpec) -> Hold:
        result = await self.faults.run(
            "reserve",
            lambda: self.book.reserve(
                reservation_id=reservation_id,
                account_id=account_id,
                symbol=spec.symbol,
                side=int(spec.side),
                quantity=spec.quantity,
                price=spec.price,
            ),
        )
        held = result.reservation
        return Hold(held.reservation_id, held.open_quantity, held.reserved_cash, result.replayed)

    async def release(self, reservation_id: str, account_id: str) -> Released:
        result = await self.faults.run(
            "release", lambda: self.book.release(reservation_id, account_id)
        )
        return Released(result.released_quantity, result.released_cash)

    async def apply_fill(
        self, *, reservation_id: str, account_id: str, trade_id: str, price: int, quantity: int
    ) -> bool:
        result = await self.faults.run(
            "apply_fill",
            lambda: self.book.apply_fill(
                reservation_id=reservation_id,
                trade_id=trade_id,
                price=price,
                quantity=quantity,
                account_id=account_id,
            ),
        )
        return result.replayed

    async def settle(self, fills: Sequence[FillDue], releases: Sequence[ReleaseDue]) -> Settled:
        """Each item as its own apply_fill or release (faults included), as
        RiskService's Settle does; `settle_calls` lists each call's item count."""
        self.settle_calls.append(len(fills) + len(releases))
        fill_outcomes: list[FillOutcome] = []
        for f in fills:
            try:
                fill_outcomes.append(
                    await self.apply_fill(
                        reservation_id=f.reservation_id,
                        account_id=f.account_id,
                        trade_id=f.trade_id,
                        price=f.price,
                        quantity=f.quantity,
                    )
                )
            except DomainError as err:
                fill_outcomes.append(err)
        release_outcomes: list[ReleaseOutcome] = []
        for r in releases:
            try:
                release_outcomes.append(await self.release(r.reservation_id, r.account_id))
            except DomainError as err:
                release_outcomes.append(err)
        return Settled(tuple(fill_outcomes), tuple(release_outcomes))


class InProcessMatching:
    """MatchingPort over a MatchingEngine."""

    def __init__(self, engine: MatchingEngine) -> None:
        self.engine = engine
        self.faults = Faults()

    async def submit(self, *, order_id: str, account_id: str, spec: OrderSpec) -> Execution:
        report = await self.faults.run(
            "submit",
            lambda: self.engine.submit(
                order_id=order_id,
                account_id=account_id,
                symbol=spec.symbol,
                side=int(spec.side),
                type=int(spec.type),
                time_in_force=int(spec.time_in_force),
                quantity=spec.quantity,
                price=spec.price,
            ),
        )
        trades = tuple(
            Trade(
                t.trade_id,
                t.symbol,
                t.price,
                t.quantity,
                t.maker_order_id,
                t.taker_order_id,
                t.maker_account_id,
                t.taker_account_id,
                t.timestamp_ns,
            )
            for t in report.trades
        )
        return Execution(
            report.order_id,
            report.status,
            report.filled_quantity,
            report.resting_quantity,
            trades,
            report.replayed,
        )

    async def cancel(self, *, symbol: str, order_id: str) -> int:
        return await self.faults.run("cancel", lambda: self.engine.cancel(symbol, order_id))


class EngineRing:
    """Matching engines by instance id, sharded by symbol over a RingHashPicker of
    the ones up: the MatchingPort a desk places through (routed by symbol, like the
    mesh channel) and the EngineDirectory re-homing follows.

    `leave(name)` takes an engine off the ring: crashed (its calls fail, and it
    comes back with empty books) or only out of the ring (alive, books kept: a
    drain that never ended, an ejection). `calls` logs (engine, method, order id)."""

    def __init__(self, catalog: InstrumentCatalog, names: tuple[str, ...]) -> None:
        self._catalog = catalog
        self.engines = {name: MatchingEngine(catalog, engine_id=name) for name in names}
        self.ports = {name: self._port(name) for name in names}
        self.up = set(names)
        self.crashed: set[str] = set()
        self.calls: list[tuple[str, str, str]] = []
        self._listeners: list[Callable[[], None]] = []
        self._picker = self._ring()

    def _port(self, name: str) -> InProcessMatching:
        port = InProcessMatching(self.engines[name])
        for method in ("submit", "cancel"):
            call = getattr(port, method)

            async def logged(*, _call=call, _method=method, _name=name, **kwargs):
                if _name in self.crashed:
                    raise Unavailable(f"matching engine {_name} unavailable: connection refused")
                self.calls.append((_name, _method, kwargs["order_id"]))
                return await _call(**kwargs)

            setattr(port, method, logged)
        return port

    def _ring(self) -> RingHashPicker:
        return RingHashPicker([EndpointStats(name, name) for name in sorted(self.up)])

    def leave(self, name: str, *, crash: bool = True, notify: bool = True) -> None:
        self.up.discard(name)
        if crash:
            self.crashed.add(name)
        self._changed(notify)

    def join(self, name: str, *, notify: bool = True) -> None:
        if name in self.crashed:  # a restart: empty books
            self.crashed.discard(name)
            self.engines[name] = MatchingEngine(self._catalog, engine_id=name)
            self.ports[name] = self._port(name)
        self.up.add(name)
        self._changed(notify)

    def _changed(self, notify: bool) -> None:
        self._picker = self._ring()
        if notify:
            for listener in list(self._listeners):
                listener()

    def book(self, name: str, symbol: str) -> list[tuple[int, int, int]]:
        """(price, quantity, order count) of both sides' levels on one engine."""
        snapshot = self.engines[name].book(symbol)
        return [(lv.price, lv.quantity, lv.order_count) for lv in snapshot.bids + snapshot.asks]

    # EngineDirectory
    def owner(self, symbol: str) -> str | None:
        return self._picker.owner(symbol)

    def usable(self) -> frozenset[str]:
        return frozenset(self.up)

    def engine(self, instance_id: str) -> InProcessMatching:
        return self.ports[instance_id]

    def on_change(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    # MatchingPort, by symbol
    def _owner_port(self, symbol: str) -> InProcessMatching:
        owner = self.owner(symbol)
        if owner is None:
            raise Unavailable("no matching engine is registered")
        return self.ports[owner]

    async def submit(self, *, order_id: str, account_id: str, spec: OrderSpec) -> Execution:
        port = self._owner_port(spec.symbol)
        return await port.submit(order_id=order_id, account_id=account_id, spec=spec)

    async def cancel(self, *, symbol: str, order_id: str) -> int:
        return await self._owner_port(symbol).cancel(symbol=symbol, order_id=order_id)


class Clock:
    """Unix nanoseconds that move only forward, by 1 µs per reading, or when told."""

    def __init__(self) -> None:
        self.now = 1_700_000_000_000_000_000

    def __call__(self) -> int:
        self.now += 1_000
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * 1e9)


def order(
    account: str = "alice",
    key: str = "c-1",
    *,
    side: int = 1,
    quantity: int = 10,
    price: int = 10_000,
    symbol: str = "AAPL",
    type: int = 1,
    tif: int = 0,
) -> OrderRequest:
    """A PlaceOrder request: by default a GTC LIMIT buy of 10 AAPL at 10_000."""
    return OrderRequest(account, key, symbol, side, type, tif, quantity, price)


async def until(condition: Callable[[], bool], *, turns: int = 100) -> None:
    """Lets other tasks run until `condition` holds (no sleeping: loop turns only)."""
    for _ in range(turns):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError(f"condition still false after {turns} event loop turns")
