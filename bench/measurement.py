"""One measured figure of the benchmark: what ran, under which load, and what it gave.

Every driver (h2load, wrk, ghz, the Python clients) returns Measurements; the
report writes them all to JSON, Markdown and plots. Latencies are milliseconds,
CPU is seconds of user + system time over the measured window.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Transport = Literal["grpc", "rest"]
Load = Literal["closed", "open"]

# A load generator above this share of one core is the bottleneck, not the server:
# its figure is flagged "generator-bound" (in its notes and in the report).
GENERATOR_BOUND_SHARE = 0.85

# The percentiles every figure reports, and those the percentile curves plot.
REPORTED_PERCENTILES = (50.0, 90.0, 99.0, 99.9)
CURVE_PERCENTILES = (0.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.99, 100.0)


@dataclass
class Measurement:
    scenario: str  # "get_quote", "place_order", "order_entry", "fanout", "floor_echo", ...
    transport: Transport
    variant: str  # what served it: "mesh mTLS", "bare grpc.aio", "FastAPI", "aiohttp", ...
    driver: str  # "h2load", "wrk", "ghz", "python-grpc", "python-http"
    load: Load
    concurrency: int | None  # closed loop: calls in flight; open loop: None
    target_rate: float | None  # open loop: intended calls/s; closed loop: None
    duration_s: float  # the measured window (warm-up excluded)
    requests: int  # calls (or messages) completed
    errors: int  # calls that failed, by the server's answer or the transport
    throughput_rps: float  # completed calls per second
    items_per_request: int = 1  # orders per batch; throughput x this = items/s
    latency_ms: dict[str, float] = field(
        default_factory=dict
    )  # "p50", "p90", "p99", "p99.9", "mean", "max"
    latency_curve: list[tuple[float, float]] = field(default_factory=list)  # (percentile, ms)
    generator_cpu_s: float | None = None  # the load generator's CPU in the window
    server_cpu_s: dict[str, float] = field(default_factory=dict)  # process name -> CPU s
    server_counted: int | None = None  # calls the server saw succeed, where it can tell
    notes: str = ""
    round: int | None = None  # costs: the on/off round this figure belongs to (0-based)

    @property
    def items_per_s(self) -> float:
        return self.throughput_rps * self.items_per_request

    @property
    def generator_share(self) -> float | None:
        """The load generator's CPU as a share of one core over the window."""
        return generator_share(self.generator_cpu_s, self.duration_s)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["items_per_s"] = self.items_per_s
        return data


def generator_share(cpu_s: float | None, duration_s: float) -> float | None:
    return cpu_s / duration_s if cpu_s is not None and duration_s > 0 else None


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of already sorted values (0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(
        0, min(len(sorted_values) - 1, math.ceil(pct * len(sorted_values) / 100.0 - 1e-9) - 1)
    )
    return float(sorted_values[rank])


def summarize_latencies(
    latencies_ms: Sequence[float],
) -> tuple[dict[str, float], list[tuple[float, float]]]:
    """The reported percentiles (plus mean and max) and the plotted curve of raw latencies."""
    ordered = sorted(latencies_ms)
    summary = {f"p{pct:g}": percentile(ordered, pct) for pct in REPORTED_PERCENTILES}
    summary["mean"] = sum(ordered) / len(ordered) if ordered else 0.0
    summary["max"] = ordered[-1] if ordered else 0.0
    curve = [(pct, percentile(ordered, pct)) for pct in CURVE_PERCENTILES]
    return summary, curve
