"""SettleBatcher over the real RiskBook: settlements that arrive while a call is in
flight go together in the next one, each caller gets its own outcomes, and a caller
that gives up changes nothing for the others."""

from __future__ import annotations

import asyncio

import pytest

from services.errors import NotFound
from services.orders.ports import FillDue, Released, ReleaseDue, Settled
from services.orders.risk_batches import SettleBatcher, owner_groups
from services.risk.accounts import RiskBook
from tests.services.orders.support import InProcessRisk, until


def reserve(book: RiskBook, rid: str, account: str, quantity: int = 10) -> None:
    book.reserve(
        reservation_id=rid, account_id=account, symbol="AAPL", side=1, quantity=quantity, price=100
    )


async def test_settlements_waiting_for_a_call_share_the_next_one(
    risk: InProcessRisk, risk_book: RiskBook
) -> None:
    for i in range(4):
        reserve(risk_book, f"r-{i}", f"acct-{i}")
    batcher = SettleBatcher(risk)
    gate = risk.faults.hold("apply_fill")  # the first call stalls
    first = asyncio.create_task(batcher.settle([FillDue("r-0", "acct-0", "t-0", 100, 1)], ()))
    await until(lambda: risk.settle_calls == [1])
    waiting = [
        asyncio.create_task(batcher.settle([FillDue("r-1", "acct-1", "t-1", 100, 2)], ())),
        asyncio.create_task(
            batcher.settle(
                [FillDue("r-2", "acct-2", "t-2", 100, 3), FillDue("nope", "acct-2", "t-9", 100, 1)],
                [ReleaseDue("r-2", "acct-2")],
            )
        ),
        asyncio.create_task(batcher.settle((), [ReleaseDue("r-3", "acct-3")])),
    ]
    await until(lambda: batcher.queued == 3)
    gate.set()

    assert await first == Settled((False,), ())
    one, two, three = await asyncio.gather(*waiting)
    assert risk.settle_calls == [1, 5], "the three waiting settlements went in one call"
    assert batcher.calls == 2
    assert one == Settled((False,), ())
    assert two.fills[0] is False and isinstance(two.fills[1], NotFound)
    assert two.releases == (Released(7, 700),)
    assert three == Settled((), (Released(10, 1_000),))


async def test_a_caller_that_gives_up_leaves_the_others_their_outcomes(
    risk: InProcessRisk, risk_book: RiskBook
) -> None:
    reserve(risk_book, "r-1", "acct-1")
    reserve(risk_book, "r-2", "acct-2")
    batcher = SettleBatcher(risk)
    gate = risk.faults.hold("apply_fill")
    impatient = asyncio.create_task(batcher.settle([FillDue("r-1", "acct-1", "t-1", 100, 1)], ()))
    await until(lambda: risk.settle_calls == [1])
    patient = asyncio.create_task(batcher.settle([FillDue("r-2", "acct-2", "t-2", 100, 2)], ()))
    await asyncio.sleep(0)
    impatient.cancel()
    with pytest.raises(asyncio.CancelledError):
        await impatient
    gate.set()

    assert await patient == Settled((False,), ())
    # The abandoned fill was still applied: a retry of it is a replay.
    assert risk_book.apply_fill(
        reservation_id="r-1", trade_id="t-1", price=100, quantity=1
    ).replayed


def test_items_are_grouped_by_the_owner_of_their_account() -> None:
    owners = {"a": "risk-0", "b": "risk-1", "c": "risk-0"}
    fills = [FillDue("r1", "a", "t", 1, 1), FillDue("r2", "b", "t", 1, 1)]
    releases = [ReleaseDue("r3", "c"), ReleaseDue("r4", "b")]
    groups = owner_groups(fills, releases, owners.get)
    assert [(g.account_id, g.fills, g.releases) for g in groups] == [
        ("a", [0], [0]),
        ("b", [1], [1]),
    ]
    no_ring = owner_groups(fills, releases, lambda _key: None)
    assert [(g.fills, g.releases) for g in no_ring] == [([0, 1], [0, 1])]
