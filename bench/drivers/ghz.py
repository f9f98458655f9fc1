"""ghz, the standard gRPC load generator, used instead of h2load when installed.

It reads the methods from the project's descriptor set (ghz's reflection mode
cannot resolve grpcio-reflection's method symbols, bojand/ghz#419) and reports
JSON (`--format json`): counts, a latency distribution in nanoseconds, and one
`details` entry per call, from which the curve is computed. Unlike h2load it
checks grpc-status, so its error count is the server's answer.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from bench.drivers.tools import require, run_tool
from bench.measurement import summarize_latencies

DESCRIPTOR_SET = Path(__file__).resolve().parents[2] / "protos/trading/v1/descriptor_set.binpb"


def available() -> bool:
    return shutil.which("ghz") is not None


def grpc_unary(
    address: str,
    method: str,
    data: dict[str, Any],
    *,
    concurrency: int,
    duration_s: float,
    workdir: Path,
) -> dict[str, Any]:
    """`method` like "/trading.v1.MarketDataService/GetQuote"; `data` its request as JSON."""
    command = [require("ghz"), "--insecure", "--protoset", str(DESCRIPTOR_SET)]
    command += ["--call", method.lstrip("/").replace("/", "."), "-d", json.dumps(data)]
    # One connection per concurrent caller, like h2load -c N -m 1.
    command += ["-c", str(concurrency), "--connections", str(concurrency)]
    command += ["-z", f"{max(1, round(duration_s * 1000))}ms", "--format", "json", address]
    done = run_tool(command, timeout_s=duration_s + 30)
    return parse(done.stdout, done.cpu_s, done.stderr if done.returncode else "")


def parse(stdout: str, cpu_s: float, failure: str = "") -> dict[str, Any]:
    try:
        report = json.loads(stdout)
    except json.JSONDecodeError:
        raise RuntimeError(f"ghz printed no JSON report: {failure or stdout[-500:]}") from None
    details = report.get("details") or []
    if details:
        latencies = [d["latency"] / 1e6 for d in details if d.get("status", "OK") == "OK"]
    else:  # an old ghz without details: its distribution only
        latencies = [d["latency"] / 1e6 for d in report.get("latencyDistribution") or []]
    summary, curve = summarize_latencies(latencies)
    statuses = report.get("statusCodeDistribution") or {}
    ok = int(statuses.get("OK", report.get("count", 0)))
    errors = int(report.get("count", 0)) - ok
    return {
        "requests": ok,
        "errors": errors,
        "duration_s": report.get("total", 0) / 1e9,
        "latency_ms": summary,
        "latency_curve": curve,
        "generator_cpu_s": cpu_s,
        "first_error": "; ".join(sorted(report.get("errorDistribution") or {}))[:300],
    }
