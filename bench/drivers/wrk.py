"""wrk as the REST load generator (HTTP/1.1 keep-alive, one connection per
concurrent request). A Lua script sets the method and body, and its done() hook
prints every percentile we report as JSON (wrk's latency stats are in µs).
Non-2xx/3xx answers count as errors ("status" in wrk's error summary)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.drivers.tools import require, run_tool
from bench.measurement import CURVE_PERCENTILES, REPORTED_PERCENTILES

_MARK = "WRK_JSON "

_DONE_HOOK = """
local percentiles = {%(percentiles)s}
done = function(summary, latency, requests)
  local e = summary.errors
  local parts = {}
  for _, p in ipairs(percentiles) do
    local v
    if p <= 0 then v = latency.min elseif p >= 100 then v = latency.max
    else v = latency:percentile(p) end
    parts[#parts + 1] = string.format('["%%s", %%d]', tostring(p), v)
  end
  io.write(string.format(
    '%(mark)s{"requests": %%d, "duration_us": %%d, "connect": %%d, "read": %%d, ' ..
    '"write": %%d, "status": %%d, "timeout": %%d, "mean_us": %%f, "max_us": %%d, ' ..
    '"percentiles": [%%s]}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.max, table.concat(parts, ", ")))
end
"""


def lua_script(method: str, body: bytes | None) -> str:
    points = sorted(set(REPORTED_PERCENTILES) | set(CURVE_PERCENTILES))
    lines = [f'wrk.method = "{method}"']
    if body is not None:
        lines.append(f"wrk.body = {_lua_string(body.decode())}")
        lines.append('wrk.headers["Content-Type"] = "application/json"')
    hook = _DONE_HOOK % {"percentiles": ", ".join(f"{p:g}" for p in points), "mark": _MARK}
    return "\n".join(lines) + "\n" + hook


def _lua_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def run(
    url: str,
    *,
    method: str = "GET",
    body: bytes | None = None,
    concurrency: int,
    duration_s: float,
    workdir: Path,
) -> dict[str, Any]:
    script = workdir / "wrk.lua"
    script.write_text(lua_script(method, body))
    seconds = max(1, round(duration_s))  # wrk takes whole seconds
    command = [require("wrk"), "-t", "1", "-c", str(concurrency), "-d", f"{seconds}s"]
    command += ["--timeout", "10s", "-s", str(script), url]
    done = run_tool(command, timeout_s=seconds + 30)
    return parse(done.stdout, done.cpu_s, done.stderr if done.returncode else "")


def parse(stdout: str, cpu_s: float, failure: str = "") -> dict[str, Any]:
    found = [line for line in stdout.splitlines() if line.startswith(_MARK)]
    if not found:
        raise RuntimeError(f"wrk printed no summary: {failure or stdout[-500:]}")
    data = json.loads(found[-1][len(_MARK) :])
    points = {float(p): us / 1000.0 for p, us in data["percentiles"]}
    errors = sum(data[k] for k in ("connect", "read", "write", "status", "timeout"))
    summary = {f"p{p:g}": points[p] for p in REPORTED_PERCENTILES}
    summary["mean"] = data["mean_us"] / 1000.0
    summary["max"] = data["max_us"] / 1000.0
    return {
        # wrk's request count includes the non-2xx answers (its "status" errors).
        "requests": data["requests"] - data["status"],
        "errors": errors,
        "duration_s": data["duration_us"] / 1e6,
        "latency_ms": summary,
        "latency_curve": [(p, points[p]) for p in CURVE_PERCENTILES],
        "generator_cpu_s": cpu_s,
        "first_error": failure[-300:],
    }
