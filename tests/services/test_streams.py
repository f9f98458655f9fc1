"""BoundedStream: offers never wait, a full stream refuses, an end is always told."""

from __future__ import annotations

import asyncio

import pytest

from services.errors import ResourceExhausted, Unavailable
from services.streams import BoundedStream


async def read(stream: BoundedStream[int], count: int) -> list[int]:
    return [await anext(stream) for _ in range(count)]


async def test_offered_items_come_out_in_order() -> None:
    with BoundedStream[int](10) as stream:
        assert all(stream.offer(n) for n in range(5))
        assert stream.backlog == 5
        assert await read(stream, 5) == [0, 1, 2, 3, 4]
        assert stream.backlog == 0


async def test_a_full_stream_refuses_without_queueing_or_waiting() -> None:
    stream = BoundedStream[int](2)
    assert stream.offer(1) and stream.offer(2)
    assert not stream.offer(3)
    assert stream.backlog == 2 and not stream.closed
    assert await read(stream, 2) == [1, 2]
    assert stream.offer(4), "room again once read"


async def test_initial_items_come_first_and_do_not_count_against_the_limit() -> None:
    stream = BoundedStream(1, initial=[10, 11, 12])
    assert stream.offer(1) and not stream.offer(2)
    assert stream.backlog == 4
    assert await read(stream, 4) == [10, 11, 12, 1]


async def test_an_end_with_an_error_drops_the_backlog_and_every_read_raises() -> None:
    stream = BoundedStream(2, initial=[0])
    stream.offer(1)
    stream.end(ResourceExhausted("fell behind by more than 2; resubscribe"))
    assert stream.closed and stream.backlog == 0
    for _ in range(2):
        with pytest.raises(ResourceExhausted, match="fell behind by more than 2; resubscribe"):
            await anext(stream)


async def test_the_first_end_wins() -> None:
    stream = BoundedStream[int](1)
    stream.end(Unavailable("shutting down"))
    stream.end(ResourceExhausted("too late"))
    stream.close()
    with pytest.raises(Unavailable):
        await anext(stream)


async def test_close_stops_iteration_and_is_safe_twice() -> None:
    stream = BoundedStream[int](3)
    stream.offer(1)
    stream.close()
    stream.close()
    assert stream.closed and stream.backlog == 0
    assert [n async for n in stream] == []


async def test_leaving_the_block_closes() -> None:
    with BoundedStream[int](1) as stream:
        pass
    assert stream.closed


async def test_a_waiting_reader_wakes_on_offer() -> None:
    stream = BoundedStream[int](1)
    reader = asyncio.create_task(anext(stream))
    await asyncio.sleep(0)
    assert not reader.done()
    stream.offer(7)
    assert await asyncio.wait_for(reader, 1) == 7


async def test_every_waiting_reader_wakes_on_end() -> None:
    stream = BoundedStream[int](1)
    readers = [asyncio.create_task(anext(stream)) for _ in range(3)]
    await asyncio.sleep(0)
    stream.end(ResourceExhausted("fell behind"))
    results = await asyncio.wait_for(asyncio.gather(*readers, return_exceptions=True), 1)
    assert all(isinstance(r, ResourceExhausted) for r in results)


async def test_a_waiting_reader_stops_on_close() -> None:
    stream = BoundedStream[int](1)
    reader = asyncio.create_task(anext(stream))
    await asyncio.sleep(0)
    stream.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(reader, 1)


def test_the_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        BoundedStream[int](0)


def test_the_offer_path_allocates_no_instance_dict() -> None:
    assert not hasattr(BoundedStream[int](1), "__dict__")
