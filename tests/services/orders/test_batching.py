"""batching.Coalescer: calls that arrive while one is in flight go together in the
next one, a caller waits no longer than its deadline, and the batch call runs in
its first caller's context under the latest of its callers' deadlines."""

from __future__ import annotations

import asyncio
import time

from clients.resilience.deadline import SERVING_DEADLINE
from services.errors import DomainError, NotFound, Unavailable
from services.orders.batching import Coalescer, key_groups, scatter


class Recorder:
    """A `send` that answers each item with its double, holding each call until
    its gate opens; it records the items and the serving deadline of each call."""

    def __init__(self) -> None:
        self.sent: list[list[int]] = []
        self.deadlines: list[float | None] = []
        self.gates: list[asyncio.Event] = []

    async def send(self, items: list[int]) -> list[int | DomainError]:
        self.sent.append(items)
        self.deadlines.append(SERVING_DEADLINE.get())
        gate = asyncio.Event()
        self.gates.append(gate)
        await gate.wait()
        return [item * 2 if item >= 0 else Unavailable("refused") for item in items]


async def _until(condition, seconds: float = 2.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition still false"
        await asyncio.sleep(0.001)


async def test_waiting_calls_share_the_next_call_and_each_gets_its_outcomes() -> None:
    recorder = Recorder()
    batches: Coalescer[int, int] = Coalescer(recorder.send, what="test service")
    first = asyncio.create_task(batches.run([1]))
    await _until(lambda: len(recorder.sent) == 1)
    others = [asyncio.create_task(batches.run(items)) for items in ([2, 3], [-1], [4])]
    await _until(lambda: batches.queued == 3)
    recorder.gates[0].set()
    assert await first == [2]
    await _until(lambda: len(recorder.sent) == 2)
    recorder.gates[1].set()
    two, refused, four = await asyncio.gather(*others)
    assert recorder.sent == [[1], [2, 3, -1, 4]]
    assert (two, four, batches.calls) == ([4, 6], [8], 2)
    assert isinstance(refused[0], Unavailable)


async def test_a_caller_waits_no_longer_than_its_deadline_and_its_unsent_item_is_dropped() -> None:
    recorder = Recorder()
    batches: Coalescer[int, int] = Coalescer(recorder.send, what="test service")
    first = asyncio.create_task(batches.run([1]))
    await _until(lambda: len(recorder.sent) == 1)
    started = time.monotonic()
    (late,) = await batches.run([2], within=0.05)
    assert 0.04 <= time.monotonic() - started < 1.0
    assert isinstance(late, Unavailable) and "DEADLINE_EXCEEDED" in late.message
    recorder.gates[0].set()
    assert await first == [2]
    await asyncio.sleep(0.01)
    assert recorder.sent == [[1]], "the timed-out item was never sent"


async def test_the_batch_call_runs_under_the_latest_deadline_of_its_callers() -> None:
    recorder = Recorder()
    batches: Coalescer[int, int] = Coalescer(recorder.send, what="test service")

    async def under(deadline: float | None, item: int) -> list[int | DomainError]:
        SERVING_DEADLINE.set(deadline)
        return await batches.run([item])

    now = time.monotonic()
    first = asyncio.create_task(under(now + 5, 1))
    await _until(lambda: len(recorder.sent) == 1)
    waiting = [asyncio.create_task(under(now + d, i)) for i, d in ((2, 3.0), (3, 4.0))]
    await _until(lambda: batches.queued == 2)
    recorder.gates[0].set()
    await _until(lambda: len(recorder.sent) == 2)
    recorder.gates[1].set()
    await asyncio.gather(first, *waiting)
    assert recorder.deadlines == [now + 5, now + 4.0]


def test_keys_are_grouped_by_owner_in_order() -> None:
    owners = {"a": "one", "b": "two", "c": "one"}
    assert key_groups(["a", "b", "c", "b"], owners.get) == [[0, 2], [1, 3]]
    assert key_groups(["a", "b"], lambda _key: None) == [[0, 1]]


def test_scatter_places_each_answer_at_its_item_or_one_error_for_all() -> None:
    outcomes: list[str | DomainError] = [Unavailable("not sent")] * 4
    scatter(outcomes, [3, 1], ["a", "b"], lambda i, answer: f"{i}:{answer}", call="X")
    assert outcomes[3] == "3:a" and outcomes[1] == "1:b"

    refused = NotFound("gone")
    scatter(outcomes, [0, 2], refused, lambda i, answer: answer, call="X")
    assert outcomes[0] is refused and outcomes[2] is refused

    scatter(outcomes, [1, 3], ["only one"], lambda i, answer: answer, call="risk ReserveBatch")
    assert isinstance(outcomes[1], Unavailable) and outcomes[1] is outcomes[3]
    assert "risk ReserveBatch answered 1 items for 2" in outcomes[1].message


async def test_an_idle_call_goes_at_once_whatever_the_linger() -> None:
    recorder = Recorder()
    batches: Coalescer[int, int] = Coalescer(recorder.send, what="test service", linger=60.0)
    first = asyncio.create_task(batches.run([1]))
    await _until(lambda: len(recorder.sent) == 1)
    recorder.gates[0].set()
    assert await first == [2]
    # Nobody was waiting when it returned: the next call does not linger either.
    second = asyncio.create_task(batches.run([2]))
    await _until(lambda: len(recorder.sent) == 2)
    recorder.gates[1].set()
    assert await second == [4]
    assert recorder.sent == [[1], [2]]


async def test_under_load_the_next_call_lingers_and_takes_the_callers_arriving_meanwhile() -> None:
    recorder = Recorder()
    batches: Coalescer[int, int] = Coalescer(recorder.send, what="test service", linger=0.2)
    first = asyncio.create_task(batches.run([1]))
    await _until(lambda: len(recorder.sent) == 1)
    waiting = asyncio.create_task(batches.run([2]))
    await _until(lambda: batches.queued == 1)
    recorder.gates[0].set()
    assert await first == [2]
    # Callers were waiting as it returned: the next call lingers, and a caller
    # arriving meanwhile joins it rather than going alone.
    joining = asyncio.create_task(batches.run([3]))
    await _until(lambda: batches.queued == 2)
    assert recorder.sent == [[1]]
    await _until(lambda: len(recorder.sent) == 2)
    recorder.gates[1].set()
    assert (await waiting, await joining) == ([4], [6])
    assert recorder.sent == [[1], [2, 3]] and batches.calls == 2
