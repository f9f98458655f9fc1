"""OrderService's domain: the PlaceOrder saga, cancels, and queries over the store.

PlaceOrder is a saga over two services that each keep their own state:

    store the order as pending (the durable intent; its id is the reservation id)
    -> risk.reserve -> matching.submit
    -> one transaction: the engine's answer, every fill (ours and, when the maker
       order is in this store, the maker's)
    -> risk.apply_fill per fill, then risk.release of what a settled order still holds

If the reserve is refused, the order is REJECTED with the risk's reason. If the
submit fails or its answer is lost, the order is unwound: matching.cancel (the
engine remembers a cancel of an id it has not seen, so a late submit is never
booked), then a repeat of the submit, which now only returns the engine's first
report: if nothing traded the order is REJECTED and the caller gets Unavailable;
if it did trade after all, the trades are recorded and the rest stays canceled.
If the unwinding itself fails, the order stays pending and `recover_pending`
(run at start-up and by the retry loop) finishes it.

Every change's order events are appended to the store's event log in the change's
own transaction (an event exists iff its change committed); each process's hub
tails that log, so a subscriber sees changes booked by any process sharing the
store (events.py). The hub is only poked after the commit, to read it at once.

Risk calls after a commit go through an outbox (store columns): anything RiskService
does not confirm is retried by `settle_outbox`, so nothing stays reserved for
nothing and no fill is lost. A reservation is released only once its order is
settled and all its fills are applied, because RiskService refuses a fill that
arrives after the release.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

from services.errors import (
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unavailable,
    Violations,
)
from services.instruments import InstrumentCatalog
from services.model import OrderSpec, OrderStatus, check_id, parse_order_spec
from services.orders.events import OrderEvent, OrderEventHub, OrderEventStream, OrderEventType
from services.orders.lifecycle import Fill, IllegalTransition, Order
from services.orders.paging import decode_page_token, encode_page_token, filters_digest
from services.orders.ports import Execution, MatchingPort, RiskPort, Trade
from services.orders.store import OrderStore, Outbox

_LOGGER = logging.getLogger(__name__)

MAX_BATCH_ORDERS = 1000
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
# A pending order older than this is nobody's work in progress any more: a
# placement finishes within a few downstream timeouts (reserve, submit, and the
# cancel and repeat that unwind it), so recovery leaves younger ones to their
# placement, which may be running in another worker process on the same store.
DEFAULT_RECOVERY_GRACE_SECONDS = 15.0

# Errors after which retrying the same call later may succeed; any other
# DomainError is a definite refusal.
_RETRYABLE = (Unavailable, ResourceExhausted)
_ERROR_TYPES: dict[str, type[DomainError]] = {
    cls.code: cls for cls in (NotFound, AlreadyExists, FailedPrecondition, ResourceExhausted)
}


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """A PlaceOrder request as received, before validation."""

    account_id: str
    client_order_id: str
    symbol: str
    side: int
    type: int
    time_in_force: int
    quantity: int
    price: int


@dataclass(frozen=True, slots=True)
class Placement:
    """PlaceOrder's answer: the order, its own (taker) fills, and whether this
    was a replay of an earlier request with the same key."""

    order: Order
    fills: tuple[Fill, ...]
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class Cancellation:
    order: Order
    canceled_quantity: int  # 0 when the order was already canceled


@dataclass(frozen=True, slots=True)
class OrderPage:
    orders: tuple[Order, ...]
    next_page_token: str  # empty on the last page


PlaceOutcome = Placement | DomainError


@dataclass(slots=True)
class _Booking:
    """What one transaction changed: its events (appended to the log inside it) and
    what to settle after it commits."""

    order: Order
    events: list[OrderEvent] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)  # new fills, every order
    orders: set[str] = field(default_factory=set)  # ids of every order changed


@dataclass(frozen=True, slots=True)
class _InFlight:
    spec: OrderSpec
    order_id: str
    task: asyncio.Task[PlaceOutcome]


class OrderDesk:
    """Places, cancels and looks up orders; the store is the system of record."""

    def __init__(
        self,
        store: OrderStore,
        risk: RiskPort,
        matching: MatchingPort,
        *,
        catalog: InstrumentCatalog,
        events: OrderEventHub | None = None,
        recovery_grace_seconds: float = DEFAULT_RECOVERY_GRACE_SECONDS,
        clock: Callable[[], int] = time.time_ns,
        new_order_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self._store = store
        self._risk = risk
        self._matching = matching
        self._catalog = catalog
        self.events = events if events is not None else OrderEventHub(store)
        self._grace_ns = int(recovery_grace_seconds * 1e9)
        self._clock = clock
        self._new_order_id = new_order_id
        # Placements and cancels in progress in this process. Each runs as its own
        # task, shielded from its caller: a client that hangs up mid-saga must not
        # leave the saga half done; duplicates of the same key wait for it.
        self._placing: dict[tuple[str, str], _InFlight] = {}
        self._canceling: dict[str, asyncio.Task[Cancellation]] = {}

    # -- PlaceOrder --------------------------------------------------------------

    async def place(self, request: OrderRequest) -> Placement:
        """Places one order, idempotently on (account_id, client_order_id)."""
        spec = self._parse(request)
        key = (request.account_id, request.client_order_id)
        running = self._placing.get(key)
        if running is not None:
            if running.spec != spec:
                raise _key_reused(request.client_order_id, running.order_id)
            return _as_replay(await asyncio.shield(running.task))
        # No await from here to the task's registration: within this process the
        # lookup and the insert are atomic; across processes the UNIQUE key decides.
        existing = self._store.find(request.account_id, client_order_id=request.client_order_id)
        if existing is not None:
            return self._replay(existing, spec)
        order = Order.pending(
            order_id=self._new_order_id(),
            account_id=request.account_id,
            client_order_id=request.client_order_id,
            spec=spec,
            now_ns=self._clock(),
        )
        stored = self._store.insert(order)  # one autocommit write: the durable intent
        if stored.order_id != order.order_id:  # another worker won the key
            return self._replay(stored, spec)
        task = asyncio.get_running_loop().create_task(self._run_placement(order))
        self._placing[key] = _InFlight(spec, order.order_id, task)
        task.add_done_callback(lambda _: self._placing.pop(key, None))
        outcome = await asyncio.shield(task)
        if isinstance(outcome, DomainError):
            raise outcome
        return outcome

    async def place_batch(self, requests: Sequence[OrderRequest]) -> list[PlaceOutcome]:
        """OrderEntry: each order placed in turn with PlaceOrder semantics, one
        outcome per order. A batch above MAX_BATCH_ORDERS gets the same
        InvalidArgument for every order, and none is placed."""
        if len(requests) > MAX_BATCH_ORDERS:
            too_big = InvalidArgument(
                [
                    FieldViolation(
                        "orders",
                        f"a batch holds at most {MAX_BATCH_ORDERS} orders, got {len(requests)}; "
                        "split it into smaller batches (none of these orders was placed)",
                    )
                ]
            )
            return [too_big] * len(requests)
        # Sequential on purpose: correctness first; batched downstream calls later.
        outcomes: list[PlaceOutcome] = []
        for request in requests:
            try:
                outcomes.append(await self.place(request))
            except DomainError as err:
                outcomes.append(err)
        return outcomes

    def _parse(self, request: OrderRequest) -> OrderSpec:
        violations = Violations()
        # parse_order_spec first: it tells its own violations from earlier ones.
        spec = parse_order_spec(
            violations,
            self._catalog,
            symbol=request.symbol,
            side=request.side,
            type=request.type,
            time_in_force=request.time_in_force,
            quantity=request.quantity,
            price=request.price,
        )
        check_id(violations, "account_id", request.account_id)
        check_id(violations, "client_order_id", request.client_order_id)
        violations.raise_if_any()
        assert spec is not None  # no violations means a spec
        return spec

    def _replay(self, existing: Order, spec: OrderSpec) -> Placement:
        """The answer to a key already used: the first result, or its error."""
        if existing.spec != spec:
            raise _key_reused(existing.client_order_id, existing.order_id)
        if existing.is_pending:
            raise Unavailable(
                f"order {existing.order_id} (client_order_id {existing.client_order_id}) is "
                "still being placed; retry with the same client_order_id in a moment"
            )
        if existing.status is OrderStatus.REJECTED:
            raise _error_from_code(existing.error_code, existing.reject_reason)
        fills = self._store.fills(existing.order_id, aggressor_only=True)
        return Placement(existing, tuple(fills), replayed=True)

    async def _run_placement(self, order: Order) -> PlaceOutcome:
        """The saga. Returns the outcome rather than raising it, so duplicates
        waiting on this task can each raise their own copy."""
        try:
            await self._risk.reserve(
                reservation_id=order.order_id, account_id=order.account_id, spec=order.spec
            )
        except _RETRYABLE as err:
            # The reserve may have been applied: release it (RiskService remembers
            # a release of an unseen id, so a late reserve is refused too).
            error = Unavailable(
                f"{_about('risk service', err)}; order {order.order_id} was rejected and "
                "nothing stays reserved: place it again with a new client_order_id"
            )
            self._reject(order.order_id, error, release_due=True)
            await self._settle((), {order.order_id})
            return error
        except DomainError as err:  # a refusal (a risk limit...): nothing was reserved
            self._reject(order.order_id, err, release_due=False)
            return err
        try:
            execution = await self._matching.submit(
                order_id=order.order_id, account_id=order.account_id, spec=order.spec
            )
        except _RETRYABLE as err:
            return await self._unwind_failed_submit(order, err)
        except DomainError as err:
            # A refusal: the engine validates before it books, so nothing rests;
            # the reservation is released.
            self._reject(order.order_id, err, release_due=True)
            await self._settle((), {order.order_id})
            return err
        with self._store.transaction():
            booking = self._book(order.order_id, execution, canceled_now=0)
        return await self._finish(booking)

    async def _unwind_failed_submit(self, order: Order, err: DomainError) -> PlaceOutcome:
        """The submit's outcome is unknown: take the order off the book, then learn
        what the engine did with it (see the module doc)."""
        failure = _about("matching engine", err)
        rejected = Unavailable(
            f"{failure}; order {order.order_id} was rejected, nothing traded and nothing "
            "stays reserved: place it again with a new client_order_id"
        )
        try:
            return await self._unwind(order, rejected)
        except DomainError as unwind_err:
            with self._store.transaction():
                current = self._store.get(order.order_id)
                if current is not None and current.is_pending:
                    noted = current.note_failure(rejected.message, rejected.code, self._clock())
                    self._store.update(noted)
            _LOGGER.warning(
                "order %s: submit failed (%s) and unwinding it failed too (%s); "
                "recovery will finish it",
                order.order_id,
                err.message,
                unwind_err.message,
            )
            return Unavailable(
                f"{failure}; order {order.order_id} is being unwound: retry with the same "
                "client_order_id to learn its outcome"
            )

    async def _unwind(self, order: Order, rejected: DomainError) -> PlaceOutcome:
        """Cancel, then repeat the submit to read the engine's first report. Raises
        (leaving the order pending) when either call fails."""
        spec = order.spec
        canceled_now = await self._matching.cancel(symbol=spec.symbol, order_id=order.order_id)
        # Safe to repeat now: an id canceled before it arrived is never booked, and
        # a known id only returns its first report.
        execution = await self._matching.submit(
            order_id=order.order_id, account_id=order.account_id, spec=spec
        )
        with self._store.transaction():
            current = self._store.get(order.order_id)
            assert current is not None, "a pending order is never deleted"
            never_booked = spec.quantity - execution.filled_quantity - execution.resting_quantity
            if (
                current.is_pending
                and current.filled_quantity == 0
                and execution.filled_quantity == 0
                and never_booked + canceled_now == spec.quantity
            ):
                booking = self._reject_in_transaction(current, rejected, release_due=True)
            else:  # it traded after all (or finished elsewhere): record what happened
                booking = self._book(order.order_id, execution, canceled_now=canceled_now)
        if booking.order.status is OrderStatus.REJECTED:
            self._committed(booking)
            await self._settle((), booking.orders)
            return _error_from_code(booking.order.error_code, booking.order.reject_reason)
        return await self._finish(booking)

    def _book(self, order_id: str, execution: Execution, *, canceled_now: int) -> _Booking:
        """Inside a transaction: records the engine's report and every fill of it."""
        now = self._clock()
        current = self._store.get(order_id)
        assert current is not None, "a pending order is never deleted"
        booking = _Booking(current, orders={order_id})
        if not current.is_pending:  # another worker, or recovery, recorded it first
            return booking
        current = current.accept(now)
        booking.events.append(OrderEvent(OrderEventType.ACCEPTED, current))
        current = self._book_trades(current, execution, now, booking)
        # What the engine canceled at submission (an IOC/MARKET rest, or an id it
        # had seen canceled) plus what an unwinding cancel took off the book.
        rest = (
            current.spec.quantity
            - execution.filled_quantity
            - execution.resting_quantity
            + canceled_now
        )
        if rest > 0:
            current = current.cancel(rest, now)
            booking.events.append(OrderEvent(OrderEventType.CANCELED, current))
        self._store.update(current)
        self._store.append_events(booking.events, now_ns=now)
        booking.order = current
        return booking

    def _book_trades(
        self, current: Order, execution: Execution, now: int, booking: _Booking
    ) -> Order:
        """Inside a transaction: the fills of `execution`'s trades, this order's
        (taker) and the makers' in this store; each is recorded once."""
        order_id = current.order_id
        for trade in execution.trades:
            if trade.taker_order_id == order_id:
                fill = Fill(
                    trade.trade_id, order_id, trade.price, trade.quantity, True, trade.timestamp_ns
                )
                if not self._store.has_fill(fill):
                    try:
                        filled = current.fill(trade.quantity, trade.price, now)
                    except IllegalTransition as err:  # see _book_maker_fill
                        _LOGGER.error("trade %s: taker fill not recorded: %s", trade.trade_id, err)
                    else:
                        self._store.add_fill(fill)
                        current = filled
                        booking.fills.append(fill)
                        booking.events.append(OrderEvent(OrderEventType.FILLED, current, fill))
            self._book_maker_fill(trade, now, booking)
        return current

    def _book_maker_fill(self, trade: Trade, now: int, booking: _Booking) -> None:
        """The resting side of a trade, when that order is in this store."""
        maker = self._store.get(trade.maker_order_id)
        if maker is None or maker.account_id != trade.maker_account_id:
            return  # placed through another OrderService: its own store records it
        fill = Fill(
            trade.trade_id, maker.order_id, trade.price, trade.quantity, False, trade.timestamp_ns
        )
        if self._store.has_fill(fill):
            return
        try:
            maker = maker.fill(trade.quantity, trade.price, now)
        except IllegalTransition as err:
            # The engine and the store disagree about the maker; recording the taker
            # matters more than failing the whole placement over it.
            _LOGGER.error("trade %s: maker fill not recorded: %s", trade.trade_id, err)
            return
        self._store.add_fill(fill)
        self._store.update(maker)
        booking.fills.append(fill)
        booking.orders.add(maker.order_id)
        booking.events.append(OrderEvent(OrderEventType.FILLED, maker, fill))

    def _reject(self, order_id: str, error: DomainError, *, release_due: bool) -> None:
        with self._store.transaction():
            current = self._store.get(order_id)
            assert current is not None, "a pending order is never deleted"
            booking = self._reject_in_transaction(current, error, release_due=release_due)
        self._committed(booking)

    def _reject_in_transaction(
        self, current: Order, error: DomainError, *, release_due: bool
    ) -> _Booking:
        booking = _Booking(current, orders={current.order_id})
        if not current.is_pending:
            return booking
        now = self._clock()
        rejected = current.reject(error.message, error.code, now)
        self._store.update(rejected)
        if not release_due:  # refused by risk: it reserved nothing
            self._store.mark_release(rejected.order_id, Outbox.DONE)
        booking.order = rejected
        booking.events.append(OrderEvent(OrderEventType.REJECTED, rejected))
        self._store.append_events(booking.events, now_ns=now)
        return booking

    async def _finish(self, booking: _Booking) -> PlaceOutcome:
        """After the commit: the hub poked, risk told, the answer built."""
        self._committed(booking)
        await self._settle(booking.fills, booking.orders)
        order = booking.order
        if order.status is OrderStatus.REJECTED:
            return _error_from_code(order.error_code, order.reject_reason)
        fills = self._store.fills(order.order_id, aggressor_only=True)
        return Placement(order, tuple(fills))

    # -- the risk outbox ---------------------------------------------------------

    async def _settle(self, fills: Iterable[Fill], order_ids: Iterable[str] | None) -> None:
        """Applies `fills` at RiskService, then releases the reservations of the
        settled orders among `order_ids` (None: every order due). Whatever fails
        for now stays due in the store for `settle_outbox`."""
        applied: list[tuple[Fill, Outbox]] = []
        reachable = True
        for fill in fills:
            owner = self._store.get(fill.order_id)
            try:
                await self._risk.apply_fill(
                    reservation_id=fill.order_id,
                    account_id=owner.account_id if owner is not None else "",
                    trade_id=fill.trade_id,
                    price=fill.price,
                    quantity=fill.quantity,
                )
            except _RETRYABLE as err:
                _LOGGER.info("fill %s/%s stays due: %s", fill.trade_id, fill.order_id, err)
                reachable = False
                break
            except DomainError as err:
                _LOGGER.error("risk refused fill %s/%s: %s", fill.trade_id, fill.order_id, err)
                applied.append((fill, Outbox.FAILED))
            else:
                applied.append((fill, Outbox.DONE))
        if applied:
            with self._store.transaction():
                for fill, state in applied:
                    self._store.mark_fill(fill, state)
        if not reachable:
            return
        released: list[tuple[str, Outbox]] = []
        for order in self._store.releases_due(order_ids):
            try:
                await self._risk.release(order.order_id, order.account_id)
            except _RETRYABLE as err:
                _LOGGER.info("release of %s stays due: %s", order.order_id, err)
                break
            except DomainError as err:
                _LOGGER.error("risk refused to release %s: %s", order.order_id, err)
                released.append((order.order_id, Outbox.FAILED))
            else:
                released.append((order.order_id, Outbox.DONE))
        if released:
            with self._store.transaction():
                for order_id, state in released:
                    self._store.mark_release(order_id, state)

    async def settle_outbox(self) -> int:
        """Retries every risk call still due; returns how many remain due."""
        await self._settle(self._store.fills_due(), None)
        return self._store.outbox_backlog()

    async def recover_pending(self) -> int:
        """Finishes pending orders no placement is working on any more (older than
        the recovery grace): unwinds each like a failed submit. Returns how many
        are still pending (a downstream service is still unreachable)."""
        cutoff = self._clock() - self._grace_ns
        mine = {running.order_id for running in self._placing.values()}
        remaining = 0
        for order in self._store.pending(updated_before_ns=cutoff):
            if order.order_id in mine:
                continue
            rejected = _error_from_code(
                order.error_code or Unavailable.code,
                order.reject_reason
                or f"placing order {order.order_id} was interrupted before the matching engine "
                "answered; it was rejected, nothing traded and nothing stays reserved: place "
                "it again with a new client_order_id",
            )
            try:
                await self._unwind(order, rejected)
            except DomainError as err:
                remaining += 1
                _LOGGER.warning("pending order %s not recovered yet: %s", order.order_id, err)
        return remaining

    # -- CancelOrder -------------------------------------------------------------

    async def cancel(
        self, account_id: str, *, order_id: str = "", client_order_id: str = ""
    ) -> Cancellation:
        """Cancels the working rest of an order (by order_id or client_order_id)."""
        order = self.get(account_id, order_id=order_id, client_order_id=client_order_id)
        if order.status is None:
            raise Unavailable(
                f"order {order.order_id} is still being placed; cancel it again once "
                "PlaceOrder has answered"
            )
        if order.status is OrderStatus.CANCELED:
            return Cancellation(order, 0)
        if order.status.is_final:
            raise FailedPrecondition(
                f"order {order.order_id} is {order.status.name}; nothing left to cancel"
            )
        task = self._canceling.get(order.order_id)
        if task is None:  # concurrent cancels of one order share one engine call
            task = asyncio.get_running_loop().create_task(self._cancel_working(order))
            self._canceling[order.order_id] = task
            task.add_done_callback(lambda _: self._canceling.pop(order.order_id, None))
        return await asyncio.shield(task)

    async def _cancel_working(self, order: Order) -> Cancellation:
        removed = await self._matching.cancel(symbol=order.spec.symbol, order_id=order.order_id)
        with self._store.transaction():
            current = self._store.get(order.order_id)
            assert current is not None, "orders are never deleted"
            if removed == 0:
                if current.status is OrderStatus.CANCELED:  # another worker was first
                    return Cancellation(current, 0)
                if current.status is not None and current.status.is_final:
                    raise FailedPrecondition(
                        f"order {order.order_id} is {current.status.name}; nothing left to cancel"
                    )
                raise FailedPrecondition(
                    f"order {order.order_id} has nothing left on the book to cancel: it traded "
                    "and its fills are still being recorded (or an earlier cancel already took "
                    "it off); GetOrder shows its state"
                )
            now = self._clock()
            current = current.cancel(removed, now)
            self._store.update(current)
            self._store.append_events([OrderEvent(OrderEventType.CANCELED, current)], now_ns=now)
        self.events.notify()
        await self._settle((), {current.order_id})
        return Cancellation(current, removed)

    # -- re-homing (driven by rehoming.py) ---------------------------------------

    def working_orders(self, symbol: str, *, created_before_ns: int) -> list[Order]:
        """The symbol's NEW and PARTIALLY_FILLED orders, in time priority."""
        return self._store.working(symbol, created_before_ns=created_before_ns)

    async def book_resubmission(
        self, order_id: str, execution: Execution, *, submitted: int | None, engine: str
    ) -> Order:
        """Records what `engine` did with a working order re-submitted to it:
        trades as a placement books them (each once), any of the `submitted`
        quantity it neither filled nor rested as canceled (None: a replayed report,
        whose quantities are not this submission's), and `engine` as the order's
        home; then RiskService is told."""
        with self._store.transaction():
            now = self._clock()
            current = self._store.get(order_id)
            assert current is not None, "orders are never deleted"
            booking = _Booking(current, orders={order_id})
            current = self._book_trades(current, execution, now, booking)
            refused = 0
            if submitted is not None:
                refused = submitted - execution.filled_quantity - execution.resting_quantity
            if refused > 0 and not current.is_final and current.open_quantity:
                reason = f"a cancel reached matching engine {engine} before the order moved there"
                current = current.cancel(min(refused, current.open_quantity), now, reason=reason)
                booking.events.append(OrderEvent(OrderEventType.CANCELED, current))
            self._store.update(current)
            self._store.append_events(booking.events, now_ns=now)
            self._store.set_order_home(order_id, engine)
            booking.order = current
        self._committed(booking)
        await self._settle(booking.fills, booking.orders)
        return booking.order

    async def cancel_stranded(self, order_id: str, reason: str) -> Order:
        """Cancels the open rest of a working order that rests on no engine any
        more (re-homing could not move it), saying why; its reservation is released."""
        with self._store.transaction():
            current = self._store.get(order_id)
            assert current is not None, "orders are never deleted"
            if current.is_pending or current.is_final or not current.open_quantity:
                return current
            now = self._clock()
            current = current.cancel(current.open_quantity, now, reason=reason)
            self._store.update(current)
            self._store.append_events([OrderEvent(OrderEventType.CANCELED, current)], now_ns=now)
        self.events.notify()
        await self._settle((), {order_id})
        return current

    # -- GetOrder, ListOrders, StreamOrderEvents ---------------------------------

    def get(self, account_id: str, *, order_id: str = "", client_order_id: str = "") -> Order:
        """One of the account's orders. NotFound for another account's order too,
        so an order id reveals nothing about accounts it does not belong to."""
        violations = Violations()
        check_id(violations, "account_id", account_id)
        if order_id:
            check_id(violations, "order_id", order_id)
        elif client_order_id:
            check_id(violations, "client_order_id", client_order_id)
        else:
            violations.add("order_id", "is required: set order_id or client_order_id")
        violations.raise_if_any()
        order = self._store.find(account_id, order_id=order_id, client_order_id=client_order_id)
        if order is None:
            ref = f"order {order_id}" if order_id else f"client_order_id {client_order_id}"
            raise NotFound(
                f"account {account_id} has no {ref}; ListOrders shows the account's orders"
            )
        return order

    def list_orders(
        self,
        account_id: str,
        *,
        symbol: str = "",
        statuses: Sequence[int] = (),
        page_size: int = 0,
        page_token: str = "",
    ) -> OrderPage:
        """One page of the account's orders, newest first."""
        violations = Violations()
        check_id(violations, "account_id", account_id)
        if symbol and symbol not in self._catalog:
            violations.add("symbol", self._catalog.unknown_symbol_message(symbol))
        wanted: set[OrderStatus] = set()
        for i, status in enumerate(statuses):
            if status in OrderStatus._value2member_map_:
                wanted.add(OrderStatus(status))
            else:
                violations.add(
                    f"statuses[{i}]", "must be an ORDER_STATUS_ value other than UNSPECIFIED"
                )
        if page_size == 0:
            page_size = DEFAULT_PAGE_SIZE
        elif not 1 <= page_size <= MAX_PAGE_SIZE:
            violations.add(
                "page_size", f"must be 1 to {MAX_PAGE_SIZE} (or 0 for {DEFAULT_PAGE_SIZE})"
            )
        filters = filters_digest(account_id, symbol, wanted)
        after = None
        if page_token:
            after = decode_page_token(page_token, filters, violations)
        violations.raise_if_any()
        rows = self._store.page(
            account_id,
            symbol=symbol,
            statuses=sorted(wanted),
            after=after,
            limit=page_size + 1,
        )
        token = ""
        if len(rows) > page_size:
            last = rows[page_size - 1]
            token = encode_page_token(last.created_at_ns, last.order_id, filters)
        return OrderPage(tuple(rows[:page_size]), token)

    def subscribe(self, account_id: str) -> OrderEventStream:
        """Every later event of the account's orders (see events.py)."""
        violations = Violations()
        check_id(violations, "account_id", account_id)
        violations.raise_if_any()
        return self.events.subscribe(account_id)

    def _committed(self, booking: _Booking) -> None:
        """After the commit of a booking: its events are in the log; the tailer of
        this process reads them now rather than at its next poll."""
        if booking.events:
            self.events.notify()

    async def drain(self) -> None:
        """Waits for placements and cancels in progress (on shutdown)."""
        tasks = [p.task for p in self._placing.values()] + list(self._canceling.values())
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


def _key_reused(client_order_id: str, order_id: str) -> AlreadyExists:
    return AlreadyExists(
        f"client_order_id {client_order_id} was already used for order {order_id} with "
        "different parameters; use a new client_order_id for a new order"
    )


def _as_replay(outcome: PlaceOutcome) -> Placement:
    if isinstance(outcome, DomainError):
        raise _error_from_code(outcome.code, outcome.message) from None
    return replace(outcome, replayed=True)


def _error_from_code(code: str, message: str) -> DomainError:
    """The error a stored (or shared) failure is raised again as."""
    if code == InvalidArgument.code:
        return InvalidArgument([FieldViolation("order", message)], message)
    return _ERROR_TYPES.get(code, Unavailable)(message)


def _about(peer: str, err: DomainError) -> str:
    """`err`'s message, saying which downstream service failed (the gRPC ports'
    messages already do; in-process ones may not)."""
    if err.message.startswith(peer):
        return err.message
    return f"{peer} unavailable: {err.message}"
