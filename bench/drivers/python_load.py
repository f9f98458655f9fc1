"""The Python load generator, run as its own process so its CPU is its own:

    python -m bench.drivers.python_load --spec '{"client": "python-http", ...}'

Loads (every loop is bounded by time, every call by CALL_TIMEOUT_S):
- closed: `concurrency` callers, each sending its next call when the last ends;
- open: calls sent on a schedule fixed in advance (`rate` per second); each
  call's latency counts from its intended send time, so a late send still counts
  from its slot (no coordinated omission). At most `max_in_flight` calls are
  outstanding; a slot that finds no room is an error, not a silent skip. Before
  the schedule starts, `prime` rounds of calls open every connection of the
  (bounded) pool, so the warm-up at the target rate runs on the connections the
  window uses and no connection is opened inside it; how late the generator
  sent its calls (send lag) is reported, since a busy generator sends late;
- stream: `subscribers` quote streams; the latency of each quote is its receive
  time minus its `timestamp_ns` (the engine's clock, same host); with
  `processes`, spread over that many child processes (python_streams.py).

After `warmup_s` the driver prints `MEASURE_START`, measures `duration_s`, prints
`MEASURE_END` (the orchestrator reads the servers' CPU at both lines) and
finally `RESULT <json>`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import resource
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from bench.drivers.python_calls import CALL_TIMEOUT_S, Call, Clients
from bench.drivers.python_streams import spread, streams
from bench.measurement import summarize_latencies

_now = time.perf_counter
DRAIN_TIMEOUT_S = CALL_TIMEOUT_S + 1.0


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread, grpc-core's too
    return usage.ru_utime + usage.ru_stime


def _mark(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class Window:
    """The measured window and what was recorded in it."""

    def __init__(self) -> None:
        self.start = float("inf")
        self.end = float("inf")
        self.latencies_ms: list[float] = []
        self.requests = 0
        self.errors = 0
        self.item_errors = 0
        self.first_error = ""
        self.cpu_start = 0.0
        self.cpu_end = 0.0
        self.send_lags_ms: list[float] = []  # open loop: actual minus intended send time

    def open(self) -> None:
        self.start = _now()
        self.cpu_start = _cpu()
        _mark("MEASURE_START")

    def close(self) -> None:
        self.end = _now()
        self.cpu_end = _cpu()
        _mark("MEASURE_END")

    def inside(self, t: float) -> bool:
        return self.start <= t < self.end

    def failed(self, err: BaseException) -> None:
        self.errors += 1
        if not self.first_error:
            self.first_error = f"{type(err).__name__}: {err}"[:300]


async def _timed(window: Window, call: Call, n: int, since: float) -> None:
    """One call; recorded when its reference time (send or slot) is in the window."""
    try:
        failed_items = await call(n)
    except Exception as err:
        if window.inside(since):
            window.failed(err)
        return
    if window.inside(since):
        window.requests += 1
        window.item_errors += failed_items
        window.latencies_ms.append((_now() - since) * 1000.0)


async def closed_loop(call: Call, spec: dict[str, Any], window: Window) -> None:
    counter = iter(range(10**12))
    stop_at = _now() + spec["warmup_s"] + spec["duration_s"]

    async def caller() -> None:
        while _now() < stop_at and _now() < window.end:
            await _timed(window, call, next(counter), _now())

    callers = [asyncio.create_task(caller()) for _ in range(spec["concurrency"])]
    await _run_window(spec, window)
    await _drain(callers)


async def prime(call: Call, width: int, rounds: int, first_n: int) -> None:
    """`rounds` waves of `width` concurrent calls before the schedule: they open
    the pool's connections (aiohttp opens one per concurrent call up to its
    limit; a gRPC channel connects and its endpoint turns ready), so neither the
    warm-up nor the window pays for connection set-up. Failures here surface in
    the window anyway, so they are not counted."""
    n = first_n
    for _ in range(rounds):
        waves = [call(n + i) for i in range(width)]
        n += width
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.gather(*waves, return_exceptions=True), timeout=DRAIN_TIMEOUT_S
            )


async def open_loop(call: Call, spec: dict[str, Any], window: Window) -> None:
    rate = float(spec["rate"])
    cap = int(spec.get("max_in_flight", 1000))
    total_slots = int((spec["warmup_s"] + spec["duration_s"]) * rate)
    width = int(spec.get("connections") or 0) or 16
    await prime(call, width, int(spec.get("prime_rounds", 3)), first_n=total_slots)
    _freeze_heap()
    in_flight: set[asyncio.Task[None]] = set()
    # The schedule starts after priming, so its first slots are not already overdue.
    window_task = asyncio.create_task(_run_window(spec, window))
    begin = _now()
    slot = 0
    while slot < total_slots:
        due = begin + slot / rate
        delay = due - _now()
        if delay > 0:
            await asyncio.sleep(delay)
        now = _now()
        # Every slot already due is sent now, still timed from its own slot.
        while slot < total_slots and begin + slot / rate <= now:
            intended = begin + slot / rate
            if window.inside(intended):
                window.send_lags_ms.append((now - intended) * 1000.0)
            if len(in_flight) >= cap:
                if window.inside(intended):
                    window.failed(OverflowError(f"{cap} calls in flight: slot dropped"))
            else:
                task = asyncio.create_task(_timed(window, call, slot, intended))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
            slot += 1
    await window_task
    await _drain(list(in_flight))


def _freeze_heap() -> None:
    """Moves every object alive after set-up (modules, channels, the session) out
    of the collector's reach: a full collection then scans only what the load
    allocates, instead of pausing the generator for tens of ms mid-window."""
    gc.collect()
    gc.freeze()


async def _run_window(spec: dict[str, Any], window: Window) -> None:
    await asyncio.sleep(spec["warmup_s"])
    window.open()
    await asyncio.sleep(spec["duration_s"])
    window.close()


async def _drain(tasks: list[asyncio.Task[None]]) -> None:
    if not tasks:
        return
    _done, pending = await asyncio.wait(tasks, timeout=DRAIN_TIMEOUT_S)
    for task in pending:
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.gather(*pending, return_exceptions=True)


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    window = Window()
    extra: dict[str, Any] = {}
    async with Clients(spec) as clients:
        load = spec["load"]
        if load == "stream":
            extra = await streams(clients, spec, window)
        else:
            call = clients.call(spec["call"], int(spec.get("batch", 1)))
            runner: Callable[[Call, dict[str, Any], Window], Awaitable[None]] = (
                closed_loop if load == "closed" else open_loop
            )
            await runner(call, spec, window)
    summary, curve = summarize_latencies(window.latencies_ms)
    return {
        "requests": window.requests,
        "errors": window.errors,
        "item_errors": window.item_errors,
        "first_error": window.first_error,
        "duration_s": window.end - window.start,
        "latency_ms": summary,
        "latency_curve": curve,
        "generator_cpu_s": window.cpu_end - window.cpu_start,
        **_send_lag(window),
        **extra,
    }


def _send_lag(window: Window) -> dict[str, Any]:
    """Open loop: how late the generator sent (p50/p99/max ms) inside the window."""
    if not window.send_lags_ms:
        return {}
    lags = sorted(window.send_lags_ms)
    return {
        "send_lag_ms": {
            "p50": lags[len(lags) // 2],
            "p99": lags[min(len(lags) - 1, int(len(lags) * 0.99))],
            "max": lags[-1],
        }
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="trademesh's Python load generator")
    parser.add_argument("--spec", required=True, help="the run, as JSON (see the module doc)")
    spec = orjson.loads(parser.parse_args().spec)
    if spec["load"] == "stream" and spec.get("processes"):
        # Subscribers in child driver processes (python_streams.py).
        _mark("RESULT " + orjson.dumps(spread(spec)).decode())
        return
    if spec.get("uvloop", True):
        import uvloop

        result = uvloop.run(run(spec))
    else:
        result = asyncio.run(run(spec))
    _mark("RESULT " + orjson.dumps(result).decode())


if __name__ == "__main__":
    main()
