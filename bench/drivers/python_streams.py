"""The stream load of the Python driver: `subscribers` quote streams, each quote's
delivery lag (receive time minus its `timestamp_ns`, the engine's clock on the
same host), and how much the server conflated. Each stream's first quote of
each symbol (the start-of-stream quote: the book's state, however old) is
neither counted nor timed; only live updates are.

One Python process reading thousands of streams measures itself: past a few
hundred streams (or ~25k messages/s) its own per-message cost is the lag. So the
subscribers are spread over `processes` driver processes (the scenario sizes
it); the parent starts them with one shared wall-clock window, prints the
MEASURE marks for the orchestrator, and merges their raw figures.

Conflation: the bench runs one matching engine, whose feed sequence goes up by
one per event and each event changes one quote, so a subscriber that follows
every symbol and received quotes with sequences a..b in the window was
published b - a updates meanwhile; delivered / published is its conflation
ratio (1.0: every update arrived).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from bench.drivers.python_calls import CALL_TIMEOUT_S, Clients
from bench.measurement import summarize_latencies

_now = time.perf_counter
_START_MARGIN_S = 1.0  # the children import and connect before the shared window opens


async def streams(clients: Clients, spec: dict[str, Any], window: Any) -> dict[str, Any]:
    """Runs this process's subscribers; `window` is python_load.Window."""
    symbols = list(spec["symbols"])
    n = int(spec["subscribers"])
    counts = [0] * n
    # The newest feed sequence each subscriber has seen, at the first live
    # quote it read in the window and now: live updates delivered / published.
    top_start = [0] * n
    top = [0] * n
    updates = [0] * n
    # Whether each stream had delivered anything (its start-of-stream quotes)
    # by the window's end: a silent subscriber whose stream never opened was
    # not connected in time, which is not the fan-out's delay.
    opened = [False] * n
    failures: list[str] = []

    async def subscriber(index: int) -> None:
        # A stream starts with the current quote of each symbol (or a newer one
        # that replaced it): that quote's age is not a delivery lag (a symbol
        # no trade touched has timestamp 0), so the first one per symbol is skipped.
        start_of_stream = len(symbols)
        try:
            async for timestamp_ns, sequence in clients.quotes(symbols):
                received = _now()
                if received < window.end:
                    opened[index] = True
                if start_of_stream:
                    start_of_stream -= 1
                    top[index] = max(top[index], sequence)
                    continue
                if window.inside(received):
                    if not counts[index]:
                        top_start[index] = top[index] = max(top[index], sequence)
                    elif sequence > top[index]:
                        top[index] = sequence
                        updates[index] += 1
                    counts[index] += 1
                    window.latencies_ms.append((time.time_ns() - timestamp_ns) / 1e6)
                elif received >= window.end:
                    return
                else:
                    top[index] = max(top[index], sequence)
        except asyncio.CancelledError:
            raise
        except Exception as err:
            failures.append(f"{type(err).__name__}: {err}"[:300])

    tasks = [asyncio.create_task(subscriber(i)) for i in range(n)]
    delay = spec["window_at"] - time.time() if "window_at" in spec else spec["warmup_s"]
    await asyncio.sleep(max(0.0, delay))
    window.open()
    await asyncio.sleep(spec["duration_s"])
    window.close()
    for task in tasks:
        task.cancel()
    await asyncio.wait(tasks, timeout=CALL_TIMEOUT_S)
    window.requests = sum(counts)
    window.errors = len(failures)
    window.first_error = failures[0] if failures else ""
    # A subscriber that got nothing in the window was published nothing it could count.
    spans = [end - start if c else 0 for start, end, c in zip(top_start, top, counts, strict=True)]
    extra: dict[str, Any] = {"per_subscriber": per_subscriber(counts, updates, spans, opened)}
    if spec.get("raw_path"):  # a child of spread(): the parent merges the raw figures
        raw = {"latencies_ms": window.latencies_ms, "counts": counts}
        _write(Path(spec["raw_path"]), raw | {"updates": updates, "spans": spans, "opened": opened})
    return extra


def _write(path: Path, raw: dict[str, Any]) -> None:
    path.write_bytes(orjson.dumps(raw))  # after the window: blocking is harmless


def per_subscriber(
    counts: list[int], updates: list[int], spans: list[int], opened: list[bool]
) -> dict[str, Any]:
    delivered = sum(u for u, s in zip(updates, spans, strict=True) if s > 0)
    published = sum(s for s in spans if s > 0)
    return {
        "min": min(counts, default=0),
        "max": max(counts, default=0),
        "mean": sum(counts) / len(counts) if counts else 0,
        "silent": sum(1 for c in counts if c == 0),
        "unopened": sum(1 for o in opened if not o),
        # Updates published while the subscribers listened, and the share delivered.
        "published_max": max(spans, default=0),
        "conflation": delivered / published if published else None,
    }


def spread(spec: dict[str, Any]) -> dict[str, Any]:
    """`spec["subscribers"]` streams over `spec["processes"]` driver processes."""
    processes = int(spec["processes"])
    total = int(spec["subscribers"])
    window_at = time.time() + max(spec["warmup_s"], _START_MARGIN_S)
    children = []
    scratch = Path(tempfile.mkdtemp(prefix="trademesh-streams-"))
    raw_paths: list[Path] = []
    for index in range(processes):
        share = total // processes + (1 if index < total % processes else 0)
        raw_path = scratch / f"subscribers-{index}.json"
        raw_paths.append(raw_path)
        child = {**spec, "subscribers": share, "raw_path": str(raw_path), "window_at": window_at}
        del child["processes"]  # the child runs its streams itself
        command = [sys.executable, "-m", "bench.drivers.python_load", "--spec"]
        children.append(
            subprocess.Popen(
                [*command, orjson.dumps(child).decode()],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        )
    time.sleep(max(0.0, window_at - time.time()))
    _mark("MEASURE_START")
    started = _now()
    time.sleep(spec["duration_s"])
    _mark("MEASURE_END")
    duration = _now() - started
    results = [_result(child, spec) for child in children]
    raws = [_take(path) for path in raw_paths]
    scratch.rmdir()
    latencies = [x for r in raws for x in r["latencies_ms"]]
    counts = [c for r in raws for c in r["counts"]]
    updates = [u for r in raws for u in r["updates"]]
    spans = [s for r in raws for s in r["spans"]]
    opened = [o for r in raws for o in r["opened"]]
    summary, curve = summarize_latencies(latencies)
    errors = [r["first_error"] for r in results if r["first_error"]]
    cpu = sum(r["generator_cpu_s"] for r in results)
    if spec.get("summary_path"):  # what the scenario adds to the figure's notes
        stats = per_subscriber(counts, updates, spans, opened)
        summary_file = {"per_subscriber": stats, "cpu_s": cpu}
        Path(spec["summary_path"]).write_bytes(orjson.dumps(summary_file))
    return {
        "requests": sum(counts),
        "errors": sum(r["errors"] for r in results),
        "item_errors": 0,
        "first_error": errors[0] if errors else "",
        "duration_s": duration,
        "latency_ms": summary,
        "latency_curve": curve,
        "generator_cpu_s": cpu,
        "processes": processes,
        "per_subscriber": per_subscriber(counts, updates, spans, opened),
    }


def _result(child: subprocess.Popen[bytes], spec: dict[str, Any]) -> dict[str, Any]:
    limit = spec["duration_s"] + CALL_TIMEOUT_S + 30
    try:
        out, err = child.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        child.kill()
        out, err = child.communicate()
    for line in out.splitlines():
        if line.startswith(b"RESULT "):
            result: dict[str, Any] = orjson.loads(line[len(b"RESULT ") :])
            return result
    raise RuntimeError(f"subscriber process failed ({child.returncode}): {err[-1500:]!r}")


def _take(path: Path) -> dict[str, Any]:
    """A child's raw figures (a file: a large RESULT line may not survive a pipe
    the child's event loop set non-blocking)."""
    raw: dict[str, Any] = orjson.loads(path.read_bytes())
    path.unlink()
    return raw


def _mark(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
