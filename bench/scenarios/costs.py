"""What mTLS and telemetry cost PlaceOrder, from repeated back-to-back rounds.

One figure is not enough on a shared machine (run-to-run noise is +-25%, as
large as the effects), so each transport's three meshes are up at once: mTLS
with telemetry (the default: tracing at the default 1% sampling and /metrics),
plaintext, and mTLS with telemetry off (OTEL_SDK_DISABLED=true and
--metrics-port -1). Each round measures all three back to back with the Python
client (closed loop, unique orders), alternating the order from round to round
so a drift of the machine does not always favour one side. The report gives the
median on/off ratio over the rounds and its range.
"""

from __future__ import annotations

from bench.measurement import Measurement
from bench.runner import Deployment, Figure, Runner
from bench.scenarios.common import Step, member, on, python_driver, python_spec, unique_tag

SCENARIO = "costs"
SETUPS = ("mTLS", "plaintext", "telemetry off")  # on, then the two "off" sides
COSTS_WARMUP_S = 0.5  # the meshes stay up across rounds: warm after the first


def order(round_index: int) -> tuple[str, ...]:
    """Even rounds "on" first, odd rounds "on" last."""
    return SETUPS if round_index % 2 == 0 else SETUPS[::-1]


def costs_steps(transport: str, rounds: int, concurrency: int) -> list[Step]:
    return [
        on(member(transport, setup), _costs_step(setup, r, rounds, concurrency))
        for r in range(rounds)
        for setup in order(r)
    ]


def _costs_step(setup: str, round_index: int, rounds: int, concurrency: int) -> Step:
    def step(runner: Runner, dep: Deployment) -> Measurement:
        driver = python_driver(dep.transport)
        figure = Figure(
            SCENARIO,
            driver,
            "closed",
            concurrency=concurrency,
            notes=f"PlaceOrder, {setup}, round {round_index + 1} of {rounds}",
            round=round_index,
        )
        spec = python_spec(
            runner,
            dep,
            driver,
            "orders",
            call="place_order",
            load="closed",
            concurrency=concurrency,
            tag=unique_tag(runner, "cost"),
            warmup_s=min(runner.settings.warmup_s, COSTS_WARMUP_S),
            duration_s=runner.settings.costs_duration_s,
        )
        return runner.python(dep, figure, spec)

    return step
