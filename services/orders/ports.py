"""What OrderService needs from RiskService and the MatchingEngine, transport-free.

The saga in placement.py is written against these Protocols; downstream.py
implements them over gRPC, and tests wrap the other services' domain objects in
small in-process implementations. Every method raises services.errors
DomainErrors: a refusal keeps its own class (FailedPrecondition for a risk
limit...), and anything that leaves the outcome unknown (unreachable service,
deadline) is Unavailable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from services.errors import DomainError
from services.model import OrderSpec, OrderStatus


@dataclass(frozen=True, slots=True)
class Hold:
    """What RiskService holds for one order after a Reserve."""

    reservation_id: str
    open_quantity: int
    reserved_cash: int
    replayed: bool  # the reservation already existed: a retried call


@dataclass(frozen=True, slots=True)
class Released:
    """What a Release gave back (0 and 0 when nothing was left)."""

    quantity: int
    cash: int


@dataclass(frozen=True, slots=True)
class FillDue:
    """One fill to book at RiskService (what an ApplyFill carries)."""

    reservation_id: str
    account_id: str
    trade_id: str
    price: int
    quantity: int


@dataclass(frozen=True, slots=True)
class ReleaseDue:
    """One reservation to release (what a Release carries)."""

    reservation_id: str
    account_id: str


@dataclass(frozen=True, slots=True)
class ReserveDue:
    """One reservation to make (what a Reserve carries): a batched Reserve's item."""

    reservation_id: str
    account_id: str
    spec: OrderSpec


@dataclass(frozen=True, slots=True)
class SubmitDue:
    """One order to match (what a Submit carries): a batched Submit's item."""

    order_id: str
    account_id: str
    spec: OrderSpec


# One item's outcome in a settle(): the fill's "replayed" flag or the release's
# Released, or the DomainError its own call would have raised.
FillOutcome = bool | DomainError
ReleaseOutcome = Released | DomainError


@dataclass(frozen=True, slots=True)
class Settled:
    """settle()'s answer: one outcome per item, in the order of the call."""

    fills: tuple[FillOutcome, ...]
    releases: tuple[ReleaseOutcome, ...]


@dataclass(frozen=True, slots=True)
class Trade:
    """One execution between a resting (maker) and an incoming (taker) order."""

    trade_id: str
    symbol: str
    price: int  # the maker's price
    quantity: int
    maker_order_id: str
    taker_order_id: str
    maker_account_id: str
    taker_account_id: str
    timestamp_ns: int


@dataclass(frozen=True, slots=True)
class Execution:
    """The engine's report of one order's (first) submission."""

    order_id: str
    status: OrderStatus
    filled_quantity: int
    resting_quantity: int
    trades: tuple[Trade, ...]
    # The engine already knew the id: this is its first report again, nothing
    # matched now (the order may not rest there any more).
    replayed: bool = False


class RiskPort(Protocol):
    async def reserve(self, *, reservation_id: str, account_id: str, spec: OrderSpec) -> Hold:
        """Holds buying power / position capacity; idempotent on reservation_id.
        FailedPrecondition names the limit an order would breach."""
        ...

    async def release(self, reservation_id: str, account_id: str) -> Released:
        """Gives back what the reservation still holds; idempotent. An id never
        reserved is remembered, so a late Reserve of it is refused. The account
        routes the call to the instance that holds it."""
        ...

    async def apply_fill(
        self, *, reservation_id: str, account_id: str, trade_id: str, price: int, quantity: int
    ) -> bool:
        """Books one fill against its reservation; idempotent on (reservation_id,
        trade_id). Returns True when it had been applied before."""
        ...

    async def settle(self, fills: Sequence[FillDue], releases: Sequence[ReleaseDue]) -> Settled:
        """Every fill, then every release, each exactly as apply_fill and release
        (same checks, same idempotency), in as few calls as the accounts' owners
        allow. Never raises: each item gets its outcome, a refusal keeping its
        class, Unavailable when the call carrying it failed."""
        ...


class MatchingPort(Protocol):
    async def submit(self, *, order_id: str, account_id: str, spec: OrderSpec) -> Execution:
        """Matches an order; idempotent on order_id (a repeat returns the first
        report), and an id canceled before it arrived is never booked."""
        ...

    async def cancel(self, *, symbol: str, order_id: str) -> int:
        """Takes an order's rest off the book; returns the quantity removed (0 when
        nothing rests, or the id is unseen: it will then never be booked)."""
        ...
