"""The fan-out driver's figures: only live updates are counted and timed, and a
subscriber that got nothing in the window adds nothing to the published count."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from bench.drivers.python_load import Window
from bench.drivers.python_streams import streams

SYMBOLS = ["AAPL", "MSFT"]


class FakeClients:
    """Scripted quote streams, (timestamp_ns, sequence) as Clients.quotes yields them."""

    def __init__(self, window: Window) -> None:
        self.window = window
        self.streams_opened = 0

    async def _window_open(self) -> None:
        while self.window.start == float("inf"):
            await asyncio.sleep(0.005)

    async def quotes(self, symbols: list[str]) -> AsyncIterator[tuple[int, int]]:
        index, self.streams_opened = self.streams_opened, self.streams_opened + 1
        if index == 0:
            # Connected late: its start-of-stream quotes arrive inside the window,
            # one never traded (timestamp 0), one traded long ago.
            await self._window_open()
            yield 0, 3
            yield time.time_ns() - 60 * 10**9, 4
            yield time.time_ns(), 10  # live updates: 10, then 12 (11 was conflated)
            yield time.time_ns(), 12
        else:
            # Its start-of-stream quotes come before the window, nothing after.
            yield time.time_ns(), 499
            yield time.time_ns(), 500
        await asyncio.Event().wait()


async def test_start_of_stream_quotes_are_not_delivery_figures() -> None:
    window = Window()
    clients = FakeClients(window)
    spec: dict[str, Any] = {
        "symbols": SYMBOLS,
        "subscribers": 2,
        "warmup_s": 0.05,
        "duration_s": 0.3,
    }
    extra = await streams(clients, spec, window)  # type: ignore[arg-type]

    # Only the two live updates of subscriber 0, each with a lag of its own.
    assert window.requests == 2
    assert len(window.latencies_ms) == 2
    assert max(window.latencies_ms) < 30_000
    stats = extra["per_subscriber"]
    assert stats["silent"] == 1
    assert stats["unopened"] == 0  # both streams had opened: silent is not unconnected
    # Subscriber 0 was published 12 - 10 updates while listening and got 1 of
    # them after its first; the silent one's pre-window sequence counts for nothing.
    assert stats["published_max"] == 2
    assert stats["conflation"] == 0.5
