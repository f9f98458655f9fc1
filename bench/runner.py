"""Measuring one figure: load from a driver, the servers' CPU over the same
window, their own count of OK calls, and progress on the terminal.

C load generators (h2load, wrk, ghz) run a separate warm-up first, then the
measured run, with the servers' CPU read from /proc just before and after it.
The Python driver warms up in-process and prints MEASURE_START / MEASURE_END,
at which the servers' CPU is read.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bench.deploy import cpu_seconds
from bench.measurement import GENERATOR_BOUND_SHARE, Load, Measurement, Transport

Progress = Callable[[str], None]
RawFigure = dict[str, Any]


class Deployment(Protocol):
    transport: Transport

    @property
    def variant(self) -> str: ...

    def pids(self) -> dict[str, int]: ...

    def ok_count(self, call: str) -> int | None: ...


@dataclass(frozen=True)
class RunSettings:
    quick: bool
    duration_s: float
    warmup_s: float
    concurrency: tuple[int, ...]
    rate_fractions: tuple[float, ...]
    workdir: Path
    fanout_subscribers: int
    fanout_trades_per_s: float
    batch_size: int
    batch_concurrency: int
    open_warmup_s: float  # open loop: at the target rate, after priming the connections
    costs_rounds: int  # back-to-back on/off rounds of the mTLS and telemetry costs
    costs_duration_s: float  # seconds per costs figure (after `warmup_s`)


@dataclass
class Figure:
    """What to measure: the load is given, the deployment comes from the stage."""

    scenario: str
    driver: str
    load: Load = "closed"
    concurrency: int | None = None
    rate: float | None = None
    items_per_request: int = 1
    notes: str = ""
    round: int | None = None  # costs: which on/off round


@dataclass
class Runner:
    settings: RunSettings
    progress: Progress
    total: int = 0
    done: int = 0
    measurements: list[Measurement] = field(default_factory=list)

    # -- bookkeeping ------------------------------------------------------------------

    def _start(self, deployment: Deployment, figure: Figure) -> str:
        self.done += 1
        load = f"c{figure.concurrency}" if figure.load != "open" else f"{figure.rate:,.0f}/s"
        if figure.load == "stream":
            load = f"{figure.concurrency} subs"
        return (
            f"[{self.done}/{self.total}] {figure.scenario} {deployment.transport} "
            f"{figure.driver} {load}"
        )

    def record(self, label: str, m: Measurement) -> Measurement:
        self.measurements.append(m)
        rate = f"{m.throughput_rps:,.0f} req/s"
        if m.items_per_request > 1:
            rate += f" ({m.items_per_s:,.0f} items/s)"
        errors = f", {m.errors} errors" if m.errors else ""
        self.progress(f"{label} ... {rate} p99 {m.latency_ms.get('p99', 0):.1f} ms{errors}")
        return m

    def knee(self, scenario: str, deployment: Deployment, driver: str) -> Measurement | None:
        """The closed-loop figure with the best throughput measured so far for this
        scenario and driver on this deployment's transport and variant."""
        key = (scenario, deployment.transport, deployment.variant, driver, "closed")
        found = [
            m
            for m in self.measurements
            if (m.scenario, m.transport, m.variant, m.driver, m.load) == key and not m.errors
        ]
        return max(found, key=lambda m: m.throughput_rps, default=None)

    # -- the two kinds of driver ----------------------------------------------------------

    def tool(
        self,
        deployment: Deployment,
        figure: Figure,
        call: str,
        run: Callable[[float], RawFigure],
    ) -> Measurement:
        """An external generator: `run(seconds)` is one run of it."""
        label = self._start(deployment, figure)
        run(self.settings.warmup_s)
        pids = deployment.pids()
        counted_before = deployment.ok_count(call)
        cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        raw = run(self.settings.duration_s)
        cpu_after = {name: cpu_seconds(pid) for name, pid in pids.items()}
        counted_after = deployment.ok_count(call)
        counted = None
        if counted_before is not None and counted_after is not None:
            counted = counted_after - counted_before
            # Only the server knows a gRPC call failed when the HTTP status was 200.
            missing = raw["requests"] - counted
            if missing > 0:
                raw["errors"] += missing
                raw["requests"] -= missing
                raw["first_error"] = raw["first_error"] or f"{missing} calls not OK at the server"
        server_cpu = {name: cpu_after[name] - cpu_before[name] for name in pids}
        return self.record(label, self._measurement(deployment, figure, raw, server_cpu, counted))

    def python(
        self,
        deployment: Deployment,
        figure: Figure,
        spec: dict[str, Any],
        companion: dict[str, Any] | None = None,
    ) -> Measurement:
        """The Python driver with `spec`; `companion` is a second driver run alongside
        (fan-out's order feeder), recorded as its own figure."""
        label = self._start(deployment, figure)
        companion_result: dict[str, Any] = {}
        thread = None
        if companion is not None:
            thread = threading.Thread(
                target=lambda: companion_result.update(_run_driver(companion, None)[0]),
                daemon=True,
            )
            thread.start()
        pids = deployment.pids()
        raw, server_cpu = _run_driver(spec, pids)
        m = self.record(label, self._measurement(deployment, figure, raw, server_cpu, None))
        if thread is not None:
            thread.join(companion["warmup_s"] + companion["duration_s"] + 60)
            if companion_result:
                m.generator_cpu_s = (m.generator_cpu_s or 0) + companion_result["generator_cpu_s"]
                feeder = Figure(
                    f"{figure.scenario}_feeder", figure.driver, "open", rate=companion["rate"]
                )
                self.measurements.append(
                    self._measurement(deployment, feeder, companion_result, {}, None)
                )
        return m

    def _measurement(
        self,
        deployment: Deployment,
        figure: Figure,
        raw: RawFigure,
        server_cpu: dict[str, float],
        counted: int | None,
    ) -> Measurement:
        duration = raw["duration_s"] or 1e-9
        notes = [figure.notes] if figure.notes else []
        if raw.get("item_errors"):
            notes.append(f"{raw['item_errors']} orders refused inside answered batches")
        if raw.get("per_subscriber"):
            s = raw["per_subscriber"]
            notes.append(
                f"quotes per subscriber: min {s['min']}, mean {s['mean']:.0f}, max {s['max']}"
                + (f", {s['silent']} got none" if s["silent"] else "")
            )
        share = (raw.get("generator_cpu_s") or 0.0) / duration
        if share > GENERATOR_BOUND_SHARE:
            notes.append(f"generator-bound: the load generator used {share:.0%} of a core")
        lag = raw.get("send_lag_ms")
        if lag and lag["p99"] >= 1.0:
            notes.append(f"sent late by p99 {lag['p99']:.1f} ms, max {lag['max']:.0f} ms")
        if raw.get("first_error"):
            notes.append(f"first error: {raw['first_error']}")
        return Measurement(
            scenario=figure.scenario,
            transport=deployment.transport,
            variant=deployment.variant,
            driver=figure.driver,
            load=figure.load if figure.load != "stream" else "open",
            concurrency=figure.concurrency if figure.load != "open" else None,
            target_rate=figure.rate,
            duration_s=raw["duration_s"],
            requests=raw["requests"],
            errors=raw["errors"] + raw.get("item_errors", 0),
            throughput_rps=raw["requests"] / duration,
            items_per_request=figure.items_per_request,
            latency_ms=raw["latency_ms"],
            latency_curve=[tuple(p) for p in raw["latency_curve"]],
            generator_cpu_s=raw.get("generator_cpu_s"),
            server_cpu_s=server_cpu,
            server_counted=counted,
            notes="; ".join(notes),
            round=figure.round,
        )


def _run_driver(
    spec: dict[str, Any], pids: dict[str, int] | None
) -> tuple[RawFigure, dict[str, float]]:
    """Runs bench.drivers.python_load with `spec`; the CPU of `pids` between its marks."""
    command = [sys.executable, "-m", "bench.drivers.python_load", "--spec", json.dumps(spec)]
    limit = spec["warmup_s"] + spec["duration_s"] + 60
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    timer = threading.Timer(limit, proc.kill)  # bounded even if the driver hangs
    timer.start()
    cpu_start: dict[str, float] = {}
    server_cpu: dict[str, float] = {}
    result: RawFigure | None = None
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("MEASURE_START") and pids:
                cpu_start = {name: cpu_seconds(pid) for name, pid in pids.items()}
            elif line.startswith("MEASURE_END") and pids:
                server_cpu = {n: cpu_seconds(p) - cpu_start.get(n, 0.0) for n, p in pids.items()}
            elif line.startswith("RESULT "):
                result = json.loads(line[len("RESULT ") :])
        _out, err = proc.communicate()
    finally:
        timer.cancel()
    if result is None:
        raise RuntimeError(f"python driver failed ({proc.returncode}): {err[-1500:]}")
    return result, server_cpu


def now_stamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")
