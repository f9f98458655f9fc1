"""WriteBudget: a bounded number of writes in flight, first come first served,
stalled writes counted out."""

from __future__ import annotations

import asyncio

import pytest

from services.marketdata.pacing import WriteBudget

# Long enough that no write in these tests stalls unless it is meant to.
NEVER = 3600.0


async def turns(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def test_writes_within_the_budget_do_not_suspend() -> None:
    budget = WriteBudget(3, NEVER)
    for _ in range(3):
        # A coroutine that never suspends finishes on its first step.
        step = budget.acquire()
        with pytest.raises(StopIteration):
            step.send(None)
    assert budget.in_flight == 3
    assert budget.waiting == 0


async def test_a_writer_waits_while_the_budget_is_in_flight_however_many_turns_pass() -> None:
    """The cap is on writes in flight, not on writes started per turn: turns
    alone never let more writes into grpc, only finished writes do."""
    budget = WriteBudget(2, NEVER)
    first = await budget.acquire()
    await budget.acquire()
    third = asyncio.create_task(budget.acquire())
    await turns(20)
    assert not third.done()
    assert budget.in_flight == 2
    budget.release(first)
    await turns(2)
    assert third.done()
    assert budget.in_flight == 2


async def test_waiters_get_shares_in_arrival_order() -> None:
    budget = WriteBudget(1, NEVER)
    order: list[int] = []

    async def writer(n: int) -> None:
        ticket = await budget.acquire()
        order.append(n)
        await asyncio.sleep(0)  # the write
        budget.release(ticket)

    await asyncio.gather(*(writer(n) for n in range(6)))
    assert order == list(range(6))
    assert budget.in_flight == 0
    assert budget.waiting == 0


async def test_release_is_idempotent() -> None:
    budget = WriteBudget(1, NEVER)
    ticket = await budget.acquire()
    budget.release(ticket)
    budget.release(ticket)  # e.g. a stream ending right after its write
    await budget.acquire()
    waiter = asyncio.create_task(budget.acquire())
    await turns(3)
    assert not waiter.done()  # the second release freed no second share
    waiter.cancel()


async def test_a_cancelled_waiter_gives_its_share_to_the_next() -> None:
    budget = WriteBudget(1, NEVER)
    ticket = await budget.acquire()
    second, third = (asyncio.create_task(budget.acquire()) for _ in range(2))
    await turns(1)
    assert budget.waiting == 2
    second.cancel()
    await turns(1)
    budget.release(ticket)
    await turns(2)
    assert third.done() and not third.cancelled()
    assert second.cancelled()
    assert budget.in_flight == 1


async def test_a_waiter_cancelled_after_it_was_woken_passes_its_share_on() -> None:
    budget = WriteBudget(1, NEVER)
    ticket = await budget.acquire()
    second, third = (asyncio.create_task(budget.acquire()) for _ in range(2))
    await turns(1)
    budget.release(ticket)  # wakes second ...
    second.cancel()  # ... which is cancelled before it resumes
    await turns(3)
    assert second.cancelled()
    assert third.done() and not third.cancelled()
    assert budget.in_flight == 1


async def test_a_stalled_write_is_counted_out_so_others_go_on() -> None:
    """A write stuck on a reader that stopped reading holds its share only
    until it counts as stalled; then the others write again."""
    budget = WriteBudget(1, stall_after=0.01)
    await budget.acquire()  # never released: its reader stopped reading
    other = asyncio.create_task(budget.acquire())
    await asyncio.wait_for(other, timeout=5.0)
    assert budget.in_flight == 1  # the other one's; the stalled one is counted out


async def test_an_idle_budget_schedules_nothing() -> None:
    budget = WriteBudget(1, NEVER)
    budget.release(await budget.acquire())
    await turns(3)
    loop = asyncio.get_running_loop()
    assert not loop._ready  # type: ignore[attr-defined]  # nothing keeps the loop busy
    assert not loop._scheduled  # type: ignore[attr-defined]  # and no stall timer


@pytest.mark.parametrize(("in_flight", "stall_after"), [(0, 1.0), (1, 0.0)])
def test_a_budget_needs_a_share_and_a_stall_time(in_flight: int, stall_after: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        WriteBudget(in_flight, stall_after)
