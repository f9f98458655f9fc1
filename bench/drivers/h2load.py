"""h2load (nghttp2-client) as a gRPC unary load generator, and as an HTTP/1.1 one.

gRPC over h2load: the body is one length-prefixed message, the headers say
application/grpc and te: trailers, the URL is the method's path. h2load only
sees HTTP statuses: a call answered with grpc-status != 0 still counts as
"succeeded" here, so the runner checks every h2load figure against the
server's own count of OK calls. Percentiles come from --log-file (one line per
request: start µs, status, duration µs).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from bench.drivers.tools import require, run_tool
from bench.measurement import summarize_latencies
from bench.payloads import grpc_frame

_REQUESTS = re.compile(
    r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
    r"(\d+) errored, (\d+) timeout"
)
_STATUS = re.compile(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx")
_FINISHED = re.compile(r"finished in ([\d.]+)(m?s)")


def _duration_arg(seconds: float) -> str:
    return f"{max(1, round(seconds * 1000))}ms"


def _run(
    url: str,
    body_file: Path,
    headers: list[str],
    concurrency: int,
    duration_s: float,
    workdir: Path,
    extra: list[str],
) -> dict[str, Any]:
    log = workdir / "h2load.log"
    log.unlink(missing_ok=True)
    command = [require("h2load"), "-c", str(concurrency), "-m", "1", "-t", "1"]
    command += ["-D", _duration_arg(duration_s), "-d", str(body_file), "--log-file", str(log)]
    for header in headers:
        command += ["-H", header]
    command += [*extra, url]
    done = run_tool(command, timeout_s=duration_s + 30)
    return parse(done.stdout, log, done.cpu_s, done.stderr if done.returncode else "")


def parse(stdout: str, log: Path, cpu_s: float, failure: str = "") -> dict[str, Any]:
    requests = _REQUESTS.search(stdout)
    if requests is None:
        raise RuntimeError(f"h2load printed no request counts: {failure or stdout[-500:]}")
    _total, _started, _done, succeeded, failed, errored, timeout = map(int, requests.groups())
    status = _STATUS.search(stdout)
    non_2xx = sum(map(int, status.groups()[1:])) if status else 0
    finished = _FINISHED.search(stdout)
    duration = 0.0
    if finished:
        duration = float(finished.group(1)) / (1000.0 if finished.group(2) == "ms" else 1.0)
    latencies = []
    if log.exists():
        for line in log.read_text().splitlines():
            parts = line.split("\t")
            if len(parts) == 3 and parts[1].startswith("2"):
                latencies.append(int(parts[2]) / 1000.0)
    summary, curve = summarize_latencies(latencies)
    ok = succeeded - non_2xx
    return {
        "requests": ok,
        "errors": failed + errored + timeout + non_2xx,
        "duration_s": duration,
        "latency_ms": summary,
        "latency_curve": curve,
        "generator_cpu_s": cpu_s,
        "first_error": failure[-300:],
    }


def grpc_unary(
    address: str,
    method: str,
    message: bytes,
    *,
    concurrency: int,
    duration_s: float,
    workdir: Path,
) -> dict[str, Any]:
    """`method` like "/trading.v1.MarketDataService/GetQuote"; `message` serialized."""
    body = workdir / "h2load-grpc-body.bin"
    body.write_bytes(grpc_frame(message))
    headers = ["content-type: application/grpc", "te: trailers"]
    url = f"http://{address}{method}"
    return _run(url, body, headers, concurrency, duration_s, workdir, [])
