"""The benchmark's smoke test: `python -m bench --quick` against real processes.

It checks that every driver produces figures with calls and no errors (not
speed), that h2load's figures agree with the servers' own counts, and that the
report and plots were written. Without h2load or wrk it fails, saying how to
install them: a smoke test that skips is no test.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.scenarios.plan import SCENARIOS

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 200  # the run itself takes under a minute
C_GRPC = "ghz" if shutil.which("ghz") else "h2load"  # the gRPC C load generator
# Every scenario but layers, whose own processes and in-process timings
# tests/bench/test_layers.py covers.
MESH_SCENARIOS = tuple(s for s in SCENARIOS if s != "layers")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    missing = [tool for tool in (C_GRPC, "wrk") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not installed: run `make bench-tools`")
    out = tmp_path_factory.mktemp("bench")
    command = [sys.executable, "-m", "bench", "--quick", "--out", str(out)]
    command += ["--workdir", str(out / "work"), "--scenarios", ",".join(MESH_SCENARIOS)]
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads((out / "results.json").read_text()), out


# (scenario, transport, driver) every quick run must produce.
EXPECTED = {
    ("floor", "grpc", C_GRPC),
    ("floor", "grpc", "python-grpc"),
    ("floor", "rest", "wrk"),
    ("floor", "rest", "python-http"),
    ("get_quote", "grpc", C_GRPC),
    ("get_quote", "grpc", "python-mesh"),
    ("get_quote", "rest", "wrk"),
    ("get_quote", "rest", "python-http"),
    ("place_order", "grpc", C_GRPC),
    ("place_order", "grpc", "python-mesh"),
    ("place_order", "rest", "wrk"),
    ("place_order", "rest", "python-http"),
    ("order_entry", "grpc", "python-mesh"),
    ("order_entry", "rest", "python-http"),
    ("fanout", "grpc", "python-mesh"),
    ("fanout", "rest", "python-http"),
    ("fanout_feeder", "grpc", "python-mesh"),
    ("fanout_feeder", "rest", "python-http"),
    ("costs", "grpc", "python-mesh"),
    ("costs", "rest", "python-http"),
}


def test_every_driver_and_scenario_produces_clean_figures(quick_run: tuple[dict, Path]) -> None:
    results, _out = quick_run
    assert results["failures"] == []
    figures = results["measurements"]
    found = {(m["scenario"], m["transport"], m["driver"]) for m in figures}
    assert found >= EXPECTED, f"missing figures: {sorted(EXPECTED - found)}"
    for m in figures:
        what = f"{m['scenario']} {m['transport']} {m['driver']} {m['load']}: {m['notes']}"
        assert m["requests"] > 0, what
        assert m["errors"] == 0, what
        assert m["latency_ms"]["p99"] > 0, what
        assert m["generator_cpu_s"] is not None, what
    # Both load kinds ran, and open loop figures came from the Python clients.
    assert {"closed", "open"} <= {m["load"] for m in figures}
    # Open loops: both transports at one rate; costs: one round of all three set-ups each.
    rates = [
        m["target_rate"] for m in figures if m["scenario"] == "place_order" and m["target_rate"]
    ]
    assert len(rates) == 2 and rates[0] == rates[1], rates
    costs = {
        (m["transport"], m["variant"], m["round"]) for m in figures if m["scenario"] == "costs"
    }
    assert len(costs) == 6 and {r for *_, r in costs} == {0}, costs


def test_the_pygrpc_native_floor_runs_where_it_is_installed(
    quick_run: tuple[dict, Path],
) -> None:
    results, _out = quick_run
    native = {m["driver"] for m in results["measurements"] if m["variant"] == "bare pygrpc-native"}
    installed = importlib.util.find_spec("pygrpc_native") is not None
    assert native == ({C_GRPC, "python-grpc"} if installed else set())


def test_h2load_figures_match_the_servers_count(quick_run: tuple[dict, Path]) -> None:
    results, _out = quick_run
    checked = [m for m in results["measurements"] if m["driver"] in ("h2load", "wrk")]
    assert checked
    for m in checked:
        # The server saw at least every call the generator counted as OK (a few
        # more may have been in flight when the generator stopped counting).
        assert m["server_counted"] is not None, m
        assert m["requests"] <= m["server_counted"] <= m["requests"] + m["concurrency"], m


def test_servers_cpu_is_measured(quick_run: tuple[dict, Path]) -> None:
    results, _out = quick_run
    for m in results["measurements"]:
        if m["scenario"] != "fanout_feeder":
            assert sum(m["server_cpu_s"].values()) > 0, m


def test_report_and_plots_are_written(quick_run: tuple[dict, Path]) -> None:
    results, out = quick_run
    report = (out / "report.md").read_text()
    for heading in ("## Headlines", "## Floors", "## GetQuote", "## PlaceOrder", "## gRPC / REST"):
        assert heading in report
    assert "h2load" in report or "ghz" in report
    assert "## mTLS and telemetry costs" in report and "telemetry cost, rest" in report
    assert report.index("## Headlines") < report.index("## Floors")
    plots = sorted(p.name for p in out.glob("*.png"))
    for scenario in ("floor", "get_quote", "place_order", "order_entry", "fanout"):
        assert f"latency_{scenario}.png" in plots
    assert results["machine"]["cores"] and results["machine"]["packages"]["grpcio"]
