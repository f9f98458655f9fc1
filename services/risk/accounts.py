"""Pre-trade risk: accounts, their limits, and the capacity each working order holds.

Every order reserves what it may use before it reaches the book: buying power
(cash) for buys, position capacity for both sides. Fills consume the reservation
and move cash and position; a cancel, an IOC rest or a failed placement releases
what is left. Each call is idempotent, because OrderService retries over the
network and a compensating Release may race a Reserve that timed out.

Pure Python with no transport. A `RiskBook` lives in one process and one event
loop; its methods never await, so each call is atomic without locks. Reserve and
ApplyFill run once per order and per trade: they are O(1) dict work apart from
the account snapshot ApplyFill returns (one entry per held instrument).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from services.errors import (
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    Violations,
)
from services.instruments import InstrumentCatalog
from services.model import OrderSpec, OrderType, Side, check_id, parse_order_spec

# Trade ids come from the matching engine, whose id format is its own business;
# only require one and keep a bound on what we store per fill.
_MAX_TRADE_ID_LENGTH = 128


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """The limits an account trades under."""

    max_order_quantity: int
    max_order_notional: int
    max_position: int


@dataclass(frozen=True, slots=True)
class AccountDefaults:
    """What a new account starts with: it opens with its first accepted order."""

    initial_cash: int = 1_000_000_000  # minor units: 10 million at 2 decimals
    max_order_quantity: int = 100_000
    max_order_notional: int = 500_000_000
    max_position: int = 1_000_000

    def __post_init__(self) -> None:
        if self.initial_cash < 0:
            raise ValueError(f"initial_cash must be 0 or more, got {self.initial_cash}")
        for name in ("max_order_quantity", "max_order_notional", "max_position"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

    @property
    def limits(self) -> RiskLimits:
        return RiskLimits(self.max_order_quantity, self.max_order_notional, self.max_position)


@dataclass(frozen=True, slots=True)
class Position:
    """Net holding in one instrument, and the units working orders hold against it."""

    symbol: str
    quantity: int
    reserved_buy: int
    reserved_sell: int


@dataclass(frozen=True, slots=True)
class Account:
    """A statement of one account at one moment."""

    account_id: str
    cash: int
    reserved_cash: int
    positions: tuple[Position, ...]  # sorted by symbol; only instruments held or worked
    limits: RiskLimits

    @property
    def buying_power(self) -> int:
        return self.cash - self.reserved_cash


@dataclass(frozen=True, slots=True)
class Reservation:
    """Capacity held for one order, as it stands now."""

    reservation_id: str
    account_id: str
    symbol: str
    side: Side
    open_quantity: int  # ordered minus filled minus released
    price: int  # price cash is reserved at: the limit, or max_price for MARKET
    reserved_cash: int  # buys only: price x open_quantity


@dataclass(frozen=True, slots=True)
class ReserveResult:
    reservation: Reservation
    replayed: bool  # the reservation already existed: a retried call


@dataclass(frozen=True, slots=True)
class ReleaseResult:
    released_quantity: int  # 0 when nothing was left
    released_cash: int


@dataclass(frozen=True, slots=True)
class FillResult:
    account: Account
    replayed: bool  # this trade had been booked before: a retried call


@dataclass(slots=True)
class _PositionState:
    quantity: int = 0
    reserved_buy: int = 0
    reserved_sell: int = 0


@dataclass(slots=True)
class _AccountState:
    account_id: str
    cash: int
    limits: RiskLimits
    reserved_cash: int = 0
    positions: dict[str, _PositionState] = field(default_factory=dict)

    def position(self, symbol: str) -> _PositionState:
        pos = self.positions.get(symbol)
        if pos is None:
            pos = self.positions[symbol] = _PositionState()
        return pos

    def snapshot(self) -> Account:
        return Account(
            self.account_id,
            self.cash,
            self.reserved_cash,
            tuple(
                Position(symbol, p.quantity, p.reserved_buy, p.reserved_sell)
                for symbol, p in sorted(self.positions.items())
                if p.quantity or p.reserved_buy or p.reserved_sell
            ),
            self.limits,
        )


@dataclass(slots=True)
class _ReservationState:
    reservation_id: str
    account_id: str
    symbol: str
    side: Side
    quantity: int  # as ordered; with limit_price, what a retry must repeat
    limit_price: int  # as ordered: 0 for MARKET
    price: int  # reserve price: the limit, or the instrument's max_price for MARKET
    open_quantity: int
    # trade_id -> (price, quantity), so a retried fill is recognised and a
    # different fill reusing the id is refused.
    fills: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def reserved_cash(self) -> int:
        return self.price * self.open_quantity if self.side is Side.BUY else 0

    def snapshot(self) -> Reservation:
        return Reservation(
            self.reservation_id,
            self.account_id,
            self.symbol,
            self.side,
            self.open_quantity,
            self.price,
            self.reserved_cash,
        )


_NO_POSITION = _PositionState()  # read-only stand-in for an instrument not yet traded


class RiskBook:
    """Every account's cash, positions and working-order reservations.

    Reservations and tombstones are kept for the life of the process so that any
    retry, however late, is answered the same way.
    """

    __slots__ = ("_accounts", "_catalog", "_defaults", "_reservations", "_tombstones")

    def __init__(self, catalog: InstrumentCatalog, defaults: AccountDefaults) -> None:
        self._catalog = catalog
        self._defaults = defaults
        self._accounts: dict[str, _AccountState] = {}
        self._reservations: dict[str, _ReservationState] = {}
        # Ids released before they were ever reserved: a Reserve that arrives
        # after its own compensation must not take capacity nobody will release.
        self._tombstones: set[str] = set()

    # -- Reserve -----------------------------------------------------------------

    def reserve(
        self,
        *,
        reservation_id: str,
        account_id: str,
        symbol: str,
        side: int,
        quantity: int,
        price: int,
    ) -> ReserveResult:
        """Checks an order against its account's limits and holds what it may use."""
        spec = _parse_order(
            reservation_id, account_id, symbol, side, quantity, price, self._catalog
        )

        if reservation_id in self._tombstones:
            raise FailedPrecondition(
                f"reservation {reservation_id} was already released; use a new id"
            )
        existing = self._reservations.get(reservation_id)
        if existing is not None:
            asked = (account_id, spec.symbol, spec.side, spec.quantity, spec.price)
            held = (
                existing.account_id,
                existing.symbol,
                existing.side,
                existing.quantity,
                existing.limit_price,
            )
            if asked != held:
                raise AlreadyExists(
                    f"reservation {reservation_id} already exists for a different order "
                    f"(account {existing.account_id}, {existing.side.name} {existing.quantity} "
                    f"{existing.symbol} at {existing.limit_price or 'MARKET'}); "
                    "use a new reservation id for a new order"
                )
            return ReserveResult(existing.snapshot(), replayed=True)

        instrument = self._catalog.get(spec.symbol)
        assert instrument is not None  # parse_order_spec checked the symbol
        reserve_price = instrument.max_price if spec.is_market else spec.price

        account = self._accounts.get(account_id)
        opening = account is None
        if account is None:  # opened for real only if the order passes its checks
            defaults = self._defaults
            account = _AccountState(account_id, defaults.initial_cash, defaults.limits)
        held = account.positions.get(spec.symbol)
        _check_limits(account, spec, reserve_price, held if held is not None else _NO_POSITION)

        if opening:
            self._accounts[account_id] = account
        pos = account.position(spec.symbol)
        notional = reserve_price * spec.quantity
        if spec.side is Side.BUY:
            account.reserved_cash += notional
            pos.reserved_buy += spec.quantity
        else:
            pos.reserved_sell += spec.quantity
        reservation = _ReservationState(
            reservation_id,
            account_id,
            spec.symbol,
            spec.side,
            spec.quantity,
            spec.price,
            reserve_price,
            spec.quantity,
        )
        self._reservations[reservation_id] = reservation
        return ReserveResult(reservation.snapshot(), replayed=False)

    # -- Release -----------------------------------------------------------------

    def release(self, reservation_id: str, account_id: str = "") -> ReleaseResult:
        """Gives back whatever a reservation still holds; releasing twice is a no-op.

        An id never reserved is remembered as released, so a Reserve for it that
        was still in flight (its caller timed out and compensated) is refused
        instead of holding capacity forever.
        """
        violations = Violations()
        check_id(violations, "reservation_id", reservation_id)
        violations.raise_if_any()

        reservation = self._reservations.get(reservation_id)
        if reservation is None:
            self._tombstones.add(reservation_id)
            return ReleaseResult(0, 0)
        _check_owner(reservation, account_id)
        quantity = reservation.open_quantity
        if quantity == 0:
            return ReleaseResult(0, 0)
        cash = reservation.reserved_cash
        account = self._accounts[reservation.account_id]
        pos = account.positions[reservation.symbol]
        if reservation.side is Side.BUY:
            account.reserved_cash -= cash
            pos.reserved_buy -= quantity
        else:
            pos.reserved_sell -= quantity
        reservation.open_quantity = 0
        return ReleaseResult(quantity, cash)

    # -- ApplyFill ---------------------------------------------------------------

    def apply_fill(
        self, *, reservation_id: str, trade_id: str, price: int, quantity: int, account_id: str = ""
    ) -> FillResult:
        """Books one trade against a reservation: moves cash and position."""
        violations = Violations()
        check_id(violations, "reservation_id", reservation_id)
        if not trade_id:
            violations.add("trade_id", "is required")
        elif len(trade_id) > _MAX_TRADE_ID_LENGTH:
            violations.add("trade_id", f"must be at most {_MAX_TRADE_ID_LENGTH} characters")
        violations.require(price > 0, "price", f"must be positive, got {price}")
        violations.require(quantity > 0, "quantity", f"must be positive, got {quantity}")
        violations.raise_if_any()

        reservation = self._reservations.get(reservation_id)
        if reservation is None:
            raise NotFound(
                f"reservation {reservation_id} does not exist; a fill must follow a Reserve"
            )
        _check_owner(reservation, account_id)
        account = self._accounts[reservation.account_id]
        booked = reservation.fills.get(trade_id)
        if booked is not None:
            if booked != (price, quantity):
                raise AlreadyExists(
                    f"trade {trade_id} was already booked on reservation {reservation_id} "
                    f"as {booked[1]} at {booked[0]}, not {quantity} at {price}"
                )
            return FillResult(account.snapshot(), replayed=True)

        side = reservation.side
        if side is Side.BUY and price > reservation.price:
            raise FailedPrecondition(
                f"buy fill at {price} on reservation {reservation_id} is above its reserved "
                f"price {reservation.price}; a buy trades at its limit or better"
            )
        if side is Side.SELL and reservation.limit_price and price < reservation.limit_price:
            raise FailedPrecondition(
                f"sell fill at {price} on reservation {reservation_id} is below its limit "
                f"price {reservation.limit_price}; a sell trades at its limit or better"
            )
        if quantity > reservation.open_quantity:
            raise FailedPrecondition(
                f"fill of {quantity} on reservation {reservation_id} exceeds its open quantity "
                f"{reservation.open_quantity}; was the reservation released before its fills?"
            )

        pos = account.positions[reservation.symbol]
        if side is Side.BUY:
            account.cash -= price * quantity
            account.reserved_cash -= reservation.price * quantity
            pos.quantity += quantity
            pos.reserved_buy -= quantity
        else:
            account.cash += price * quantity
            pos.quantity -= quantity
            pos.reserved_sell -= quantity
        reservation.open_quantity -= quantity
        reservation.fills[trade_id] = (price, quantity)
        return FillResult(account.snapshot(), replayed=False)

    # -- GetAccount --------------------------------------------------------------

    def account(self, account_id: str) -> Account:
        """The account's balances, positions and limits."""
        violations = Violations()
        check_id(violations, "account_id", account_id)
        violations.raise_if_any()
        account = self._accounts.get(account_id)
        if account is None:
            raise NotFound(
                f"account {account_id} has no activity yet; accounts open with their first order"
            )
        return account.snapshot()


def _parse_order(
    reservation_id: str,
    account_id: str,
    symbol: str,
    side: int,
    quantity: int,
    price: int,
    catalog: InstrumentCatalog,
) -> OrderSpec:
    """Validates a Reserve request with the edge's own rules.

    The request carries no order type: price 0 means MARKET, anything else a
    LIMIT, so the derived type can never itself be the violation and every
    violation names a field the caller sent.
    """
    violations = Violations()
    check_id(violations, "reservation_id", reservation_id)
    check_id(violations, "account_id", account_id)
    order_type = OrderType.MARKET if price == 0 else OrderType.LIMIT
    spec = parse_order_spec(
        violations,
        catalog,
        symbol=symbol,
        side=side,
        type=order_type,
        time_in_force=0,
        quantity=quantity,
        price=price,
    )
    violations.raise_if_any()
    assert spec is not None  # no violations means a spec
    return spec


def _check_limits(
    account: _AccountState, spec: OrderSpec, reserve_price: int, pos: _PositionState
) -> None:
    """Refuses an order that would breach a limit, naming the limit and the numbers."""
    account_id, limits = account.account_id, account.limits
    cash, reserved_cash = account.cash, account.reserved_cash
    qty = spec.quantity
    if qty > limits.max_order_quantity:
        raise FailedPrecondition(
            f"max_order_quantity: order of {qty} {spec.symbol} for account {account_id} "
            f"exceeds the limit {limits.max_order_quantity}; split the order"
        )
    notional = reserve_price * qty
    priced = f"{qty} x {reserve_price}"
    if spec.is_market:
        priced += " (MARKET, at the top of the band)"
    if notional > limits.max_order_notional:
        raise FailedPrecondition(
            f"max_order_notional: order notional {notional} ({priced}) for account "
            f"{account_id} exceeds the limit {limits.max_order_notional}; reduce the size"
            + (" or send a limit price" if spec.is_market else "")
        )
    if spec.side is Side.BUY:
        available = cash - reserved_cash
        if notional > available:
            raise FailedPrecondition(
                f"buying_power: order needs {notional} ({priced}) but account {account_id} "
                f"has {available} available (cash {cash} - reserved {reserved_cash}); "
                "cancel working buys or reduce the size"
            )
        reach = pos.quantity + pos.reserved_buy + qty
        if reach > limits.max_position:
            raise FailedPrecondition(
                f"max_position: account {account_id} could hold {reach} {spec.symbol} "
                f"(position {pos.quantity} + working buys {pos.reserved_buy} + order {qty}), "
                f"above the limit {limits.max_position}"
            )
    else:
        reach = pos.quantity - pos.reserved_sell - qty
        if reach < -limits.max_position:
            raise FailedPrecondition(
                f"max_position: account {account_id} could hold {reach} {spec.symbol} "
                f"(position {pos.quantity} - working sells {pos.reserved_sell} - order {qty}), "
                f"below the limit -{limits.max_position}"
            )


def _check_owner(reservation: _ReservationState, account_id: str) -> None:
    """`account_id` routes Release and ApplyFill to the account's instance; a call
    that names another account than the reservation's is a caller's bug."""
    if account_id and account_id != reservation.account_id:
        raise InvalidArgument(
            [
                FieldViolation(
                    "account_id",
                    f"reservation {reservation.reservation_id} belongs to another account, "
                    f"not {account_id}",
                )
            ]
        )
