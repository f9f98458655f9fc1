"""WriteBudget: a bounded number of writes per event-loop turn, first come first served."""

from __future__ import annotations

import asyncio

import pytest

from services.marketdata.pacing import WriteBudget


async def test_writes_within_the_budget_do_not_suspend() -> None:
    budget = WriteBudget(3)
    for _ in range(3):
        # A coroutine that never suspends finishes on its first step.
        step = budget.acquire()
        with pytest.raises(StopIteration):
            step.send(None)
    assert budget.waiting == 0


async def test_writes_over_the_budget_wait_for_later_turns_in_arrival_order() -> None:
    budget = WriteBudget(2)
    started: list[tuple[int, int]] = []  # (turn, writer)
    turn = 0

    async def writer(n: int) -> None:
        await budget.acquire()
        started.append((turn, n))

    writers = [asyncio.create_task(writer(n)) for n in range(7)]
    while not all(w.done() for w in writers):
        await asyncio.sleep(0)  # one turn of the loop
        turn += 1
        assert turn < 50, started
    per_turn: dict[int, list[int]] = {}
    for t, n in started:
        per_turn.setdefault(t, []).append(n)
    assert [n for _, n in started] == list(range(7))  # first come, first served
    assert all(len(ns) <= 2 for ns in per_turn.values()), per_turn
    assert len(per_turn) >= 4  # 7 writers, 2 per turn


async def test_a_cancelled_waiter_gives_its_turn_to_the_next() -> None:
    budget = WriteBudget(1)
    first, second, third = (asyncio.create_task(budget.acquire()) for _ in range(3))
    await asyncio.sleep(0)  # first takes this turn's write; the others wait
    assert first.done() and budget.waiting == 2
    second.cancel()
    await asyncio.sleep(0)  # the next turn's write goes to third, not to second
    await asyncio.sleep(0)
    assert third.done() and not third.cancelled()
    assert second.cancelled()


async def test_an_idle_budget_schedules_nothing() -> None:
    budget = WriteBudget(1)
    await budget.acquire()
    for _ in range(3):
        await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    assert not loop._ready  # type: ignore[attr-defined]  # no refill keeps the loop busy


def test_a_budget_needs_at_least_one_write_per_turn() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        WriteBudget(0)
