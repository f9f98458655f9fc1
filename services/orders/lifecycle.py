"""The Order record and its state machine: which changes an order may go through.

An order starts *pending*: its intent is stored, but the book has not answered
yet (status None; adapters show ORDER_STATUS_UNSPECIFIED). From there it is
accepted (NEW, or further along if maker fills raced its own answer) or REJECTED;
fills move it through PARTIALLY_FILLED to FILLED; a cancel ends its rest.

Quantity is accounted for exactly: `filled + canceled + open == quantity`. A fill
may still arrive for a CANCELED order while `open` is positive: the trade happened
on the book before the cancel, but the other order's placement recorded it after
(the two run concurrently). The risk reservation is released only once an order
is final and fully accounted (`is_settled`), so a late fill always finds its
reservation still holding it.

Orders are immutable: every transition returns a new Order, so a snapshot handed
to an event subscriber never changes under it. A transition the lifecycle forbids
raises IllegalTransition: that is a bug in the caller, never a client error.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from services.model import OrderSpec, OrderStatus

_WORKING = (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)


class IllegalTransition(RuntimeError):
    """A change the order lifecycle forbids (a programming error)."""


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution of one order, as seen from that order's side."""

    trade_id: str
    order_id: str
    price: int
    quantity: int
    aggressor: bool  # True when this order was the incoming (taker) order
    timestamp_ns: int


@dataclass(frozen=True, slots=True)
class Order:
    """An order as the system of record knows it."""

    order_id: str
    account_id: str
    client_order_id: str
    spec: OrderSpec
    created_at_ns: int
    updated_at_ns: int
    status: OrderStatus | None = None  # None while pending: the book has not answered
    filled_quantity: int = 0
    filled_notional: int = 0  # sum of price x quantity over every fill
    canceled_quantity: int = 0  # taken off the book (or never put on it: REJECTED)
    # Why it was REJECTED, or why the service canceled it (a CANCELED order that
    # could not be moved to its symbol's new engine); empty otherwise.
    reject_reason: str = ""
    # The DomainError code a failed placement raised ("FAILED_PRECONDITION"...),
    # kept with the REJECTED order so a retry with the same key gets the same error.
    # On a pending order, a non-empty code means: the placement failed, its
    # compensation is still to finish.
    error_code: str = ""

    @classmethod
    def pending(
        cls,
        *,
        order_id: str,
        account_id: str,
        client_order_id: str,
        spec: OrderSpec,
        now_ns: int,
    ) -> Order:
        """The durable intent stored before any downstream call."""
        return cls(order_id, account_id, client_order_id, spec, now_ns, now_ns)

    @property
    def is_pending(self) -> bool:
        return self.status is None

    @property
    def is_final(self) -> bool:
        return self.status is not None and self.status.is_final

    @property
    def open_quantity(self) -> int:
        """Quantity neither filled nor canceled: working, or fills still to be recorded."""
        return self.spec.quantity - self.filled_quantity - self.canceled_quantity

    @property
    def is_settled(self) -> bool:
        """Final and fully accounted for: nothing more can happen to it."""
        return self.is_final and self.open_quantity == 0

    def accept(self, now_ns: int) -> Order:
        """The book answered: pending -> NEW (or further, if maker fills came first)."""
        if self.status is not None:
            raise IllegalTransition(
                f"order {self.order_id} is {self.status.name}; only a pending order is accepted"
            )
        # A failure noted during a compensation that found the order traded after
        # all is no longer the order's story: reject_reason is for REJECTED (and
        # for cancels by the service) only.
        return replace(
            self,
            status=self._working_status(),
            reject_reason="",
            error_code="",
            updated_at_ns=now_ns,
        )

    def fill(self, quantity: int, price: int, now_ns: int) -> Order:
        """Books one execution; a pending or CANCELED order stays so (see module doc)."""
        if self.status is OrderStatus.FILLED or self.status is OrderStatus.REJECTED:
            raise IllegalTransition(f"order {self.order_id} is {self.status.name}; it cannot fill")
        if quantity <= 0 or price <= 0:
            raise IllegalTransition(
                f"fill of {quantity} at {price} on order {self.order_id}: both must be positive"
            )
        if quantity > self.open_quantity:
            raise IllegalTransition(
                f"fill of {quantity} on order {self.order_id} exceeds its open quantity "
                f"{self.open_quantity}"
            )
        order = replace(
            self,
            filled_quantity=self.filled_quantity + quantity,
            filled_notional=self.filled_notional + quantity * price,
            updated_at_ns=now_ns,
        )
        if self.status in _WORKING:
            return replace(order, status=order._working_status())
        return order

    def cancel(self, quantity: int, now_ns: int, *, reason: str = "") -> Order:
        """The book removed `quantity` of a working order's rest: -> CANCELED.
        `reason` says why when the service canceled it, not the client."""
        if self.status not in _WORKING:
            state = "pending" if self.status is None else self.status.name
            raise IllegalTransition(
                f"order {self.order_id} is {state}; only a working order cancels"
            )
        if not 0 < quantity <= self.open_quantity:
            raise IllegalTransition(
                f"cancel of {quantity} on order {self.order_id}: must be 1 to its open quantity "
                f"{self.open_quantity}"
            )
        return replace(
            self,
            status=OrderStatus.CANCELED,
            canceled_quantity=self.canceled_quantity + quantity,
            reject_reason=reason,
            updated_at_ns=now_ns,
        )

    def note_failure(self, reason: str, code: str, now_ns: int) -> Order:
        """A pending order whose placement failed but whose compensation has not
        finished yet: remember why, so recovery rejects it with the same error."""
        if self.status is not None:
            raise IllegalTransition(f"order {self.order_id} is {self.status.name}, not pending")
        return replace(self, reject_reason=reason, error_code=code, updated_at_ns=now_ns)

    def reject(self, reason: str, code: str, now_ns: int) -> Order:
        """Refused before anything traded: pending -> REJECTED, all of it canceled."""
        if self.status is not None:
            raise IllegalTransition(f"order {self.order_id} is {self.status.name}, not pending")
        if self.filled_quantity:
            raise IllegalTransition(
                f"order {self.order_id} has filled {self.filled_quantity}; it cannot be rejected"
            )
        if not reason or not code:
            raise IllegalTransition(f"rejecting order {self.order_id} needs a reason and a code")
        return replace(
            self,
            status=OrderStatus.REJECTED,
            canceled_quantity=self.spec.quantity,
            reject_reason=reason,
            error_code=code,
            updated_at_ns=now_ns,
        )

    def _working_status(self) -> OrderStatus:
        if self.filled_quantity == self.spec.quantity:
            return OrderStatus.FILLED
        return OrderStatus.PARTIALLY_FILLED if self.filled_quantity else OrderStatus.NEW
