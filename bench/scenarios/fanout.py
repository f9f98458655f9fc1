"""Market-data fan-out: N subscribers follow every symbol's quotes while a
feeder places crossing orders through OrderService at a fixed rate.

gRPC: N StreamQuotes server streams, multiplexed over one mesh channel (HTTP/2)
per subscriber process. REST: N `GET /v1/quotes:stream` Server-Sent Events
streams (the REST variant streams, it does not poll), one HTTP/1.1 connection
each. For both alike the subscribers are spread over one process per
250 (at most the core count + 1), so a Python reader's own per-message cost is
not what the lag measures (bench/drivers/python_streams.py). Both conflate quotes
per subscriber the same way (the same fan-out object). The figure's latency is
the delivery lag: receive time minus the quote's timestamp_ns, which the engine
stamps when the book changes (same host, same clock); its throughput is quotes
delivered per second over all subscribers. The notes add the subscribers' own
CPU and the conflation ratio (updates delivered / updates published while each
subscriber listened). The feeder is recorded as its own
figure (scenario fanout_feeder): an open loop of PlaceOrder at twice the trade
rate, each sell crossing the buy before it.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import orjson

from bench.measurement import Measurement
from bench.payloads import SYMBOLS
from bench.runner import Deployment, Figure, Runner
from bench.scenarios.common import Step, python_driver, python_spec, unique_tag

# Subscribers connect during their warm-up, before the window: 1.5 s, and 1 s
# more per 500 subscribers on a busy 2-core machine.
_SUBSCRIBE_S = 1.5
_SUBSCRIBE_PER_500_S = 1.0
SUBSCRIBERS_PER_PROCESS = 250  # what one Python reader process keeps up with, roughly


def subscriber_processes(subscribers: int, cores: int | None = None) -> int:
    """One process per 250 subscribers, at most the core count + 1."""
    cores = cores or os.cpu_count() or 1
    return max(1, min(math.ceil(subscribers / SUBSCRIBERS_PER_PROCESS), cores + 1))


def fanout(subscribers: int, trades_per_s: float) -> Step:
    def step(runner: Runner, dep: Deployment) -> Measurement:
        driver = python_driver(dep.transport)
        s = runner.settings
        how = "StreamQuotes (HTTP/2 streams)" if dep.transport == "grpc" else "SSE stream"
        processes = subscriber_processes(subscribers)
        figure = Figure(
            "fanout",
            driver,
            "stream",
            concurrency=subscribers,
            notes=f"{how}; feeder {trades_per_s:g} trades/s; lag = receive - quote timestamp; "
            f"{processes} subscriber process{'es' if processes > 1 else ''}",
        )
        summary_path = s.workdir / f"{unique_tag(runner, 'fanout')}.json"
        s.workdir.mkdir(parents=True, exist_ok=True)
        subs = python_spec(
            runner,
            dep,
            driver,
            "marketdata",
            load="stream",
            subscribers=subscribers,
            symbols=list(SYMBOLS),
            warmup_s=max(s.warmup_s, _SUBSCRIBE_S + _SUBSCRIBE_PER_500_S * subscribers / 500),
            connections=0,
            processes=processes,
            summary_path=str(summary_path),
        )
        # The feeder starts with the subscribers and ends after them.
        feeder = python_spec(
            runner,
            dep,
            driver,
            "orders",
            call="place_order",
            load="open",
            rate=2 * trades_per_s,
            max_in_flight=1000,
            tag=unique_tag(runner, "feed"),
            warmup_s=subs["warmup_s"],
            duration_s=s.duration_s + 0.5,
        )
        m = runner.python(dep, figure, subs, companion=feeder)
        _add_subscriber_notes(m, summary_path)
        return m

    return step


def _add_subscriber_notes(m: Measurement, summary_path: Path) -> None:
    """The subscribers' own CPU (the figure's generator CPU adds the feeder's)
    and how much the server conflated, from the driver's summary file."""
    if not summary_path.exists():
        return
    summary = orjson.loads(summary_path.read_bytes())
    cpu = summary["cpu_s"]
    share = cpu / m.duration_s if m.duration_s else 0.0
    notes = [f"subscriber CPU {cpu:.1f} s ({share:.0%} of a core)"]
    stats = summary["per_subscriber"]
    if stats["conflation"] is not None and m.duration_s:
        published = stats["published_max"] / m.duration_s
        notes.append(
            f"updates published {published:,.0f}/s per subscriber, "
            f"delivered {stats['conflation']:.0%} (conflation)"
        )
    m.notes = "; ".join([m.notes, *notes]) if m.notes else "; ".join(notes)
