"""python -m bench: gRPC and REST side by side, in one run.

    python -m bench                          # default: a few minutes
    python -m bench --quick                  # smoke test: every driver and scenario, < 60 s
    python -m bench --scenarios floor,get_quote --duration 10 --concurrency 1,8,32
    python -m bench --scenarios costs --costs-rounds 9   # mTLS and telemetry costs only

Writes results.json (machine, versions, settings, every figure), report.md and
PNG plots to --out (default bench/results/<timestamp>), printing one line per
figure as it goes. The last scenario, `layers`, is the mesh's cost layer by
layer (bench/layers.py).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import machine, report
from bench.drivers import ghz
from bench.drivers.tools import ToolMissing, require
from bench.measurement import Measurement
from bench.runner import Runner, RunSettings, now_stamp
from bench.scenarios.plan import SCENARIOS, Stage, build

DEFAULT_SCENARIOS = SCENARIOS


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x.strip())


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(x) for x in text.split(",") if x.strip())


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke test: ~1 s per figure")
    parser.add_argument("--out", type=Path, help="results folder (default bench/results/<time>)")
    parser.add_argument(
        "--scenarios",
        default=",".join(DEFAULT_SCENARIOS),
        help=f"comma-separated, from {', '.join(SCENARIOS)} (default: all)",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        help="scratch: service state, logs, certificates (default var/bench/<out name>)",
    )
    parser.add_argument("--duration", type=float, help="seconds per figure (default 4; quick 1)")
    parser.add_argument("--warmup", type=float, help="warm-up seconds (default 1; quick 0.5)")
    parser.add_argument("--concurrency", type=_ints, help="closed-loop levels (default 1,16,64)")
    parser.add_argument(
        "--rates", type=_floats, help="open-loop rates as fractions of the closed-loop max"
    )
    parser.add_argument("--subscribers", type=int, help="fan-out subscribers (default 100)")
    parser.add_argument("--trade-rate", type=float, help="fan-out trades/s (default 100)")
    parser.add_argument("--batch", type=int, help="orders per order_entry batch (default 100)")
    parser.add_argument(
        "--costs-rounds", type=int, help="on/off rounds of the mTLS and telemetry costs (default 5)"
    )
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace, out: Path) -> RunSettings:
    quick = args.quick
    # Scratch stays out of the results folder: it holds private keys and databases.
    workdir = args.workdir or Path("var/bench") / out.resolve().name
    return RunSettings(
        quick=quick,
        duration_s=args.duration or (1.0 if quick else 4.0),
        warmup_s=args.warmup if args.warmup is not None else (0.5 if quick else 1.0),
        concurrency=args.concurrency or ((16,) if quick else (1, 16, 64)),
        rate_fractions=args.rates or ((0.5,) if quick else (0.25, 0.5, 0.75, 0.9)),
        workdir=workdir,
        fanout_subscribers=args.subscribers or (10 if quick else 100),
        fanout_trades_per_s=args.trade_rate or (20.0 if quick else 100.0),
        batch_size=args.batch or (20 if quick else 100),
        batch_concurrency=2 if quick else 4,
        open_warmup_s=1.0 if quick else 2.0,
        costs_rounds=args.costs_rounds or (1 if quick else 5),
        costs_duration_s=0.5 if quick else 2.0,
    )


def check_tools(scenarios: Sequence[str]) -> None:
    """Fails before anything starts when a load generator is missing."""
    if not ({"floor", "get_quote", "place_order"} & set(scenarios)):
        return
    if not ghz.available():
        require("h2load")
    require("wrk")


def run_layers(quick: bool, progress: Any) -> list[Measurement]:
    """bench/layers.py's per-layer costs (its own processes, not a mesh stage)."""
    from bench import layers

    return layers.run_layers(quick=quick, progress=progress)


def run_stage(stage: Stage, runner: Runner) -> None:
    deployment = stage.make()
    runner.progress(f"starting {stage.name} ...")
    deployment.start()
    try:
        for step in stage.steps:
            step(runner, deployment)
    finally:
        deployment.stop()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    out: Path = args.out or Path("bench/results") / now_stamp()
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        print(f"unknown scenarios: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    try:
        check_tools(scenarios)
    except ToolMissing as err:
        print(err, file=sys.stderr)
        return 2
    settings = settings_from(args, out)
    settings.workdir.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    certs = settings.workdir / "certs"
    stages = build(settings, scenarios, certs)

    started, clock = time.strftime("%Y-%m-%d %H:%M:%S %Z"), time.monotonic()
    load_at_start = [round(x, 2) for x in os.getloadavg()]  # 1, 5, 15 minutes

    def progress(line: str) -> None:
        print(f"{time.monotonic() - clock:5.0f}s {line}", flush=True)

    runner = Runner(settings, progress, total=sum(len(s.steps) for s in stages))
    progress(f"{runner.total} figures in {len(stages)} stages; results in {out}")
    failures: list[str] = []
    for stage in stages:
        try:
            run_stage(stage, runner)
        except Exception as err:
            failures.append(f"{stage.name}: {type(err).__name__}: {err}")
            progress(f"FAILED {failures[-1]}")
    if "layers" in scenarios:
        runner.measurements += run_layers(settings.quick, progress)
    command = "python -m bench " + shlex.join(sys.argv[1:] if argv is None else list(argv))
    results = {
        "started": started,
        "elapsed_s": time.monotonic() - clock,
        "command": command.strip(),
        "machine": {**machine.describe(), "load_average_at_start": load_at_start},
        "settings": {
            "quick": settings.quick,
            "duration_s": settings.duration_s,
            "warmup_s": settings.warmup_s,
            "concurrency": list(settings.concurrency),
            "rate_fractions": list(settings.rate_fractions),
            "fanout_subscribers": settings.fanout_subscribers,
            "fanout_trades_per_s": settings.fanout_trades_per_s,
            "batch_size": settings.batch_size,
            "batch_concurrency": settings.batch_concurrency,
            "open_warmup_s": settings.open_warmup_s,
            "costs_rounds": settings.costs_rounds,
            "costs_duration_s": settings.costs_duration_s,
            "scenarios": scenarios,
        },
        "failures": failures,
        "measurements": [m.to_json() for m in runner.measurements],
    }
    (out / "results.json").write_text(json.dumps(results, indent=1))
    written = report.write(out)
    progress(f"done in {results['elapsed_s']:.0f} s: {written}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
