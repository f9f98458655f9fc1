"""OrderService's domain: the PlaceOrder saga, and OrderDesk, the service's API over
the store (cancels.py, queries.py, recovery.py and settlement.py do the rest).

PlaceOrder is a saga over two services that each keep their own state:

    store the order as pending (the durable intent; its id is the reservation id)
    -> risk.reserve -> matching.submit
    -> one transaction: the engine's answer, every fill (ours and, when the maker
       order is in this store, the maker's) (booking.py)
    -> the answer; then, in a settlement pass shared with the placements that
       answer meanwhile, risk.apply_fill per fill and risk.release of what a
       settled order still holds (settlement.py)

If the reserve is refused, the order is REJECTED with the risk's reason. If the
submit fails or its answer is lost, the order is unwound: matching.cancel (the
engine remembers a cancel of an id it has not seen, so a late submit is never
booked), then a repeat of the submit, which now only returns the engine's first
report: if nothing traded the order is REJECTED and the caller gets Unavailable;
if it did trade after all, the trades are recorded and the rest stays canceled.
If the unwinding itself fails, the order stays pending and `recover_pending`
(run at start-up and by the retry loop; recovery.py) finishes it.

Every change's order events are appended to the store's event log in the change's
own transaction (an event exists iff its change committed); each process's hub
tails that log, so a subscriber sees changes booked by any process sharing the
store (events.py). The hub is only poked after the commit, to read it at once.

Risk calls after a commit go through an outbox (store columns): anything RiskService
does not confirm is retried by `settle_outbox`, so nothing stays reserved for
nothing and no fill is lost. A placement answers once its order is matched and
durably recorded, and settles after: the reservation holds the order's worst case
until then, so RiskService's view lags by milliseconds but never lets an account
overspend (settlement.py says why). Compensations (a release after a failed
reserve or submit, an unwinding) settle before they answer, since their answer
says nothing stays reserved. A reservation is released only once its order is
settled and all its fills are applied, because RiskService refuses a fill that
arrives after the release (settlement.py).

Placements running together share their work without changing it: their pending
inserts and bookings commit in one transaction per event loop turn
(group_commit.py; each waits for its own commit), and the risk and matching
ports send their concurrent reserves and submits as batched calls (batching.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from services.errors import (
    AlreadyExists,
    DomainError,
    FieldViolation,
    InvalidArgument,
    Unavailable,
    Violations,
)
from services.instruments import InstrumentCatalog
from services.model import OrderSpec, OrderStatus, check_id, parse_order_spec
from services.orders import queries
from services.orders.booking import Booking, book_rehomed, book_rejection, book_report
from services.orders.cancels import Cancellation, OrderCanceler
from services.orders.events import OrderEventHub, OrderEventStream
from services.orders.failures import RETRYABLE, about, error_from_code
from services.orders.group_commit import GroupCommit
from services.orders.lifecycle import Fill, Order
from services.orders.ports import Execution, MatchingPort, RiskPort
from services.orders.queries import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, OrderPage
from services.orders.recovery import DEFAULT_RECOVERY_GRACE_SECONDS, recover_abandoned
from services.orders.saga_trace import saga_order, saga_step
from services.orders.settlement import RiskSettlement
from services.orders.store import OrderStore

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "DEFAULT_RECOVERY_GRACE_SECONDS",
    "MAX_BATCH_CONCURRENCY",
    "MAX_BATCH_ORDERS",
    "MAX_PAGE_SIZE",
    "Cancellation",
    "OrderDesk",
    "OrderPage",
    "OrderRequest",
    "PlaceOutcome",
    "Placement",
]

_LOGGER = logging.getLogger(__name__)

MAX_BATCH_ORDERS = 1000
# Placements of one batch in flight at once: enough to keep risk, matching and the
# settlement batches busy, few enough that one batch cannot take every slot of the
# downstream services' load shedding.
MAX_BATCH_CONCURRENCY = 64
# How long a drain waits for settlements still running: each is a few calls with
# their own deadlines, so this only bounds a shutdown while RiskService hangs.
DRAIN_SETTLE_SECONDS = 5.0


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


PlaceOutcome = Placement | DomainError


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
        self._settlement = RiskSettlement(store, risk)
        # Pending inserts and bookings of placements running together share a
        # transaction (group_commit.py); each still waits for its own commit.
        self._group = GroupCommit(store)
        self._canceler = OrderCanceler(store, matching, self._settlement, self.events, clock)
        # Placements in progress in this process. Each runs as its own task,
        # shielded from its caller: a client that hangs up mid-saga must not
        # leave the saga half done; duplicates of the same key wait for it.
        self._placing: dict[tuple[str, str], _InFlight] = {}

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
        # lookup and the registration are atomic; across processes the UNIQUE key
        # decides, when the task inserts the order.
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
        task = asyncio.get_running_loop().create_task(self._run_placement(order))
        self._placing[key] = _InFlight(spec, order.order_id, task)
        task.add_done_callback(lambda _: self._placing.pop(key, None))
        outcome = await asyncio.shield(task)
        if isinstance(outcome, DomainError):
            raise outcome
        return outcome

    async def place_batch(self, requests: Sequence[OrderRequest]) -> list[PlaceOutcome]:
        """OrderEntry: each order placed with PlaceOrder semantics, one outcome per
        order in request order. Orders of different accounts run concurrently (up
        to MAX_BATCH_CONCURRENCY at a time); one account's run in request order. A
        batch above MAX_BATCH_ORDERS gets the same InvalidArgument for every order,
        and none is placed."""
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
        # Accounts run concurrently, each account's orders in request order: a key
        # repeated in the batch is a replay exactly as in sequential processing,
        # and an account's orders reach risk in the order its client sent them.
        outcomes: list[PlaceOutcome | None] = [None] * len(requests)
        by_account: dict[str, list[int]] = {}
        for index, request in enumerate(requests):
            by_account.setdefault(request.account_id, []).append(index)
        lanes = iter(by_account.values())

        async def worker() -> None:
            for lane in lanes:  # shared: each worker takes the next account's orders
                for index in lane:
                    try:
                        outcomes[index] = await self.place(requests[index])
                    except DomainError as err:
                        outcomes[index] = err

        workers = min(MAX_BATCH_CONCURRENCY, len(by_account))
        await asyncio.gather(*(worker() for _ in range(workers)))
        results: list[PlaceOutcome] = []
        for outcome in outcomes:
            assert outcome is not None, "every lane fills its orders' slots"
            results.append(outcome)
        return results

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
            raise error_from_code(existing.error_code, existing.reject_reason)
        fills = self._store.fills(existing.order_id, aggressor_only=True)
        return Placement(existing, tuple(fills), replayed=True)

    async def _run_placement(self, order: Order) -> PlaceOutcome:
        """The saga. Returns the outcome rather than raising it, so duplicates
        waiting on this task can each raise their own copy."""
        # The durable intent first, committed with the placements of this turn.
        stored = await self._group.run(lambda: self._store.insert(order))
        if stored.order_id != order.order_id:  # another worker won the key
            try:
                return self._replay(stored, order.spec)
            except DomainError as err:
                return err
        saga_order(order.order_id, order.account_id, order.spec.symbol)
        try:
            await self._risk.reserve(
                reservation_id=order.order_id, account_id=order.account_id, spec=order.spec
            )
        except RETRYABLE as err:
            saga_step("reserve_unknown", code=err.code, compensate="release")
            # The reserve may have been applied: release it (RiskService remembers
            # a release of an unseen id, so a late reserve is refused too).
            error = Unavailable(
                f"{about('risk service', err)}; order {order.order_id} was rejected and "
                "nothing stays reserved: place it again with a new client_order_id"
            )
            self._reject(order.order_id, error, release_due=True)
            await self._settlement.settle((), {order.order_id})
            return error
        except DomainError as err:  # a refusal (a risk limit...): nothing was reserved
            saga_step("rejected", by="risk", code=err.code)
            self._reject(order.order_id, err, release_due=False)
            return err
        saga_step("reserved")
        try:
            execution = await self._matching.submit(
                order_id=order.order_id, account_id=order.account_id, spec=order.spec
            )
        except RETRYABLE as err:
            saga_step("submit_unknown", code=err.code, compensate="unwind")
            return await self._unwind_failed_submit(order, err)
        except DomainError as err:
            # A refusal: the engine validates before it books, so nothing rests;
            # the reservation is released.
            saga_step("rejected", by="matching", code=err.code, compensate="release")
            self._reject(order.order_id, err, release_due=True)
            await self._settlement.settle((), {order.order_id})
            return err
        saga_step("submitted", filled=execution.filled_quantity, resting=execution.resting_quantity)
        booking = await self._group.run(
            lambda: book_report(
                self._store, order.order_id, execution, canceled_now=0, clock=self._clock
            )
        )
        # Matched and durably recorded: answer now, settle with risk after.
        self._booked(booking)
        self._settlement.settle_later(booking.fills, booking.orders, _accounts(execution))
        return self._answer(booking)

    async def _unwind_failed_submit(self, order: Order, err: DomainError) -> PlaceOutcome:
        """The submit's outcome is unknown: take the order off the book, then learn
        what the engine did with it (see the module doc)."""
        failure = about("matching engine", err)
        rejected = Unavailable(
            f"{failure}; order {order.order_id} was rejected, nothing traded and nothing "
            "stays reserved: place it again with a new client_order_id"
        )
        try:
            return await self._unwind(order, rejected)
        except DomainError as unwind_err:
            saga_step("unwind_failed", code=unwind_err.code, left_to="recovery")
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
                booking = book_rejection(
                    self._store, current, rejected, release_due=True, clock=self._clock
                )
            else:  # it traded after all (or finished elsewhere): record what happened
                booking = book_report(
                    self._store,
                    order.order_id,
                    execution,
                    canceled_now=canceled_now,
                    clock=self._clock,
                )
        saga_step("unwound", canceled=canceled_now, filled=execution.filled_quantity)
        # A rejection has no fills: finishing it settles only its release.
        return await self._finish(booking)

    def _reject(self, order_id: str, error: DomainError, *, release_due: bool) -> None:
        with self._store.transaction():
            current = self._store.get(order_id)
            assert current is not None, "a pending order is never deleted"
            booking = book_rejection(
                self._store, current, error, release_due=release_due, clock=self._clock
            )
        self._committed(booking)

    async def _finish(self, booking: Booking) -> PlaceOutcome:
        """After the commit: the hub poked, risk told, the answer built."""
        self._booked(booking)
        await self._settlement.settle(booking.fills, booking.orders)
        return self._answer(booking)

    def _booked(self, booking: Booking) -> None:
        saga_step("booked", status=booking.order.status.name, fills=len(booking.fills))
        self._committed(booking)

    def _answer(self, booking: Booking) -> PlaceOutcome:
        """The placement's answer, from its committed booking."""
        order = booking.order
        if order.status is OrderStatus.REJECTED:
            return error_from_code(order.error_code, order.reject_reason)
        return Placement(order, self._own_fills(booking))

    def _own_fills(self, booking: Booking) -> tuple[Fill, ...]:
        """The order's own (taker) fills in trade time order: those its booking
        recorded when they are all of them (its filled quantity is theirs: a
        fresh placement's), else as the store has them."""
        order = booking.order
        own = [f for f in booking.fills if f.order_id == order.order_id and f.aggressor]
        if sum(f.quantity for f in own) == order.filled_quantity:
            own.sort(key=_trade_time)
            return tuple(own)
        return tuple(self._store.fills(order.order_id, aggressor_only=True))

    def _committed(self, booking: Booking) -> None:
        """After the commit of a booking: its events are in the log; the tailer of
        this process reads them now rather than at its next poll."""
        if booking.events:
            self.events.notify()

    # -- the risk outbox and recovery (settlement.py, recovery.py) ----------------

    async def settle_outbox(self) -> int:
        """Retries every risk call still due; returns how many remain due."""
        return await self._settlement.settle_outbox()

    async def recover_pending(self) -> int:
        """Finishes pending orders no placement is working on any more (older than
        the recovery grace): unwinds each like a failed submit. Returns how many
        are still pending (a downstream service is still unreachable)."""
        return await recover_abandoned(
            self._store,
            updated_before_ns=self._clock() - self._grace_ns,
            in_flight={running.order_id for running in self._placing.values()},
            unwind=self._unwind,
        )

    # -- CancelOrder (cancels.py) ------------------------------------------------

    async def cancel(
        self, account_id: str, *, order_id: str = "", client_order_id: str = ""
    ) -> Cancellation:
        """Cancels the working rest of an order (by order_id or client_order_id)."""
        order = self.get(account_id, order_id=order_id, client_order_id=client_order_id)
        return await self._canceler.cancel(order)

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
            booking = book_rehomed(
                self._store,
                order_id,
                execution,
                submitted=submitted,
                engine=engine,
                clock=self._clock,
            )
        self._committed(booking)
        await self._settlement.settle(booking.fills, booking.orders)
        return booking.order

    async def cancel_stranded(self, order_id: str, reason: str) -> Order:
        """Cancels the open rest of a working order that rests on no engine any
        more (re-homing could not move it), saying why; its reservation is released."""
        return await self._canceler.cancel_stranded(order_id, reason)

    # -- GetOrder, ListOrders, StreamOrderEvents (queries.py) --------------------

    def get(self, account_id: str, *, order_id: str = "", client_order_id: str = "") -> Order:
        """One of the account's orders. NotFound for another account's order too,
        so an order id reveals nothing about accounts it does not belong to."""
        return queries.get_order(
            self._store, account_id, order_id=order_id, client_order_id=client_order_id
        )

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
        return queries.list_orders(
            self._store,
            self._catalog,
            account_id,
            symbol=symbol,
            statuses=statuses,
            page_size=page_size,
            page_token=page_token,
        )

    def subscribe(self, account_id: str) -> OrderEventStream:
        """Every later event of the account's orders (see events.py)."""
        violations = Violations()
        check_id(violations, "account_id", account_id)
        violations.raise_if_any()
        return self.events.subscribe(account_id)

    async def settled(self, within_seconds: float | None = None) -> bool:
        """Waits for the risk settlements placements started after answering;
        False when `within_seconds` passed first (the rest stays due in the outbox)."""
        return await self._settlement.settled(within_seconds)

    async def drain(self, settle_seconds: float = DRAIN_SETTLE_SECONDS) -> None:
        """Waits for placements and cancels in progress (on shutdown), then for
        their settlements, up to `settle_seconds`: what is left then stays due
        in the outbox for the next process on this store."""
        tasks = [p.task for p in self._placing.values()] + self._canceler.in_flight
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if not await self._settlement.settled(settle_seconds):
            _LOGGER.warning(
                "risk settlements still running after %.1f s; the outbox retries them",
                settle_seconds,
            )


def _trade_time(fill: Fill) -> int:
    return fill.timestamp_ns


def _accounts(execution: Execution) -> dict[str, str]:
    """The account of each order in an execution's trades: a booked fill's order
    is one of them (a maker fill is booked only when its account matches)."""
    accounts: dict[str, str] = {}
    for trade in execution.trades:
        accounts[trade.taker_order_id] = trade.taker_account_id
        accounts[trade.maker_order_id] = trade.maker_account_id
    return accounts


def _key_reused(client_order_id: str, order_id: str) -> AlreadyExists:
    return AlreadyExists(
        f"client_order_id {client_order_id} was already used for order {order_id} with "
        "different parameters; use a new client_order_id for a new order"
    )


def _as_replay(outcome: PlaceOutcome) -> Placement:
    if isinstance(outcome, DomainError):
        raise error_from_code(outcome.code, outcome.message) from None
    return replace(outcome, replayed=True)
