"""RiskSettlement's passes: the settlements placements start after answering are
settled together, one pass at a time, and each item keeps its own outcome."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from services.model import OrderStatus
from services.orders.lifecycle import Fill
from services.orders.placement import OrderDesk
from services.orders.ports import FillDue, ReleaseDue, Settled
from services.orders.settlement import RiskSettlement
from services.orders.store import OrderStore
from services.risk.accounts import RiskBook
from tests.services.orders.support import InProcessRisk, order

SELL = 2
CALLER: contextvars.ContextVar[str] = contextvars.ContextVar("caller", default="")


def position(book: RiskBook, account: str) -> int:
    pos = [p.quantity for p in book.account(account).positions if p.symbol == "AAPL"]
    return pos[0] if pos else 0


async def test_placements_answered_during_a_pass_settle_together_in_the_next(
    desk: OrderDesk, risk: InProcessRisk, risk_book: RiskBook
) -> None:
    await desk.place(order("bob", "s-1", side=SELL, quantity=40))
    assert await desk.settled()
    held = risk.faults.hold("apply_fill")  # the first pass's Settle waits here
    first = await desk.place(order("alice", "b-0", quantity=1, price=10_100))
    others = [
        await desk.place(order(f"buyer-{i}", f"b-{i}", quantity=i, price=10_100))
        for i in range(1, 4)
    ]
    held.set()
    assert await desk.settled()

    # Pass one: alice's fill and bob's. Pass two: the other three placements'
    # six fills in one Settle call.
    assert risk.settle_calls == [2, 6]
    assert all(p.order.status is OrderStatus.FILLED for p in [first, *others])
    assert [position(risk_book, f"buyer-{i}") for i in range(1, 4)] == [1, 2, 3]
    assert (position(risk_book, "alice"), position(risk_book, "bob")) == (1, -7)
    assert await desk.settle_outbox() == 0, "every fill applied, nothing left due"


class Recording:
    """A RiskPort's settle() that holds its first call and records the caller
    context each call runs in."""

    def __init__(self) -> None:
        self.callers: list[str] = []
        self.gate = asyncio.Event()

    async def settle(self, fills: Sequence[FillDue], releases: Sequence[ReleaseDue]) -> Settled:
        self.callers.append(CALLER.get())
        if len(self.callers) == 1:
            await self.gate.wait()
        return Settled(tuple(False for _ in fills), ())


def _fill(order_id: str) -> Fill:
    return Fill(f"t-{order_id}", order_id, 10_000, 1, True, 1)


def _later(settlement: RiskSettlement, caller: str, *, sampled: bool) -> None:
    CALLER.set(caller)
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
    span = NonRecordingSpan(SpanContext(1, 2, is_remote=False, trace_flags=flags))
    with trace.use_span(span):
        settlement.settle_later([_fill(caller)], {caller}, {caller: "acct"})


async def test_a_pass_runs_in_the_context_of_its_first_sampled_placement(
    store: OrderStore,
) -> None:
    recording = Recording()
    settlement = RiskSettlement(store, recording)  # type: ignore[arg-type]
    contextvars.copy_context().run(_later, settlement, "idle", sampled=False)
    while not recording.callers:
        await asyncio.sleep(0)
    for caller, sampled in (("plain", False), ("traced", True), ("traced-too", True)):
        contextvars.copy_context().run(_later, settlement, caller, sampled=sampled)
    recording.gate.set()
    assert await settlement.settled()
    assert recording.callers == ["idle", "traced"]
