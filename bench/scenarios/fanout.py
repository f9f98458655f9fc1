"""Market-data fan-out: N subscribers follow every symbol's quotes while a
feeder places crossing orders through OrderService at a fixed rate.

gRPC: N StreamQuotes server streams multiplexed over one mesh channel (HTTP/2).
REST: N `GET /v1/quotes:stream` Server-Sent Events streams (the REST variant
streams, it does not poll), one HTTP/1.1 connection each. Both conflate quotes
per subscriber the same way (the same fan-out object). The figure's latency is
the delivery lag: receive time minus the quote's timestamp_ns, which the engine
stamps when the book changes (same host, same clock); its throughput is quotes
delivered per second over all subscribers. The feeder is recorded as its own
figure (scenario fanout_feeder): an open loop of PlaceOrder at twice the trade
rate, each sell crossing the buy before it.
"""

from __future__ import annotations

from bench.measurement import Measurement
from bench.payloads import SYMBOLS
from bench.runner import Deployment, Figure, Runner
from bench.scenarios.common import Step, python_driver, python_spec, unique_tag

_SUBSCRIBE_S = 1.5  # subscribers connect during their warm-up, before the window


def fanout(subscribers: int, trades_per_s: float) -> Step:
    def step(runner: Runner, dep: Deployment) -> Measurement:
        driver = python_driver(dep.transport)
        s = runner.settings
        how = "StreamQuotes (HTTP/2 streams)" if dep.transport == "grpc" else "SSE stream"
        figure = Figure(
            "fanout",
            driver,
            "stream",
            concurrency=subscribers,
            notes=f"{how}; feeder {trades_per_s:g} trades/s; lag = receive - quote timestamp",
        )
        subs = python_spec(
            runner,
            dep,
            driver,
            "marketdata",
            load="stream",
            subscribers=subscribers,
            symbols=list(SYMBOLS),
            warmup_s=max(s.warmup_s, _SUBSCRIBE_S),
            connections=0,
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
        return runner.python(dep, figure, subs, companion=feeder)

    return step
