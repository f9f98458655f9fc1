"""The run: stages (one deployment each) and the figures measured on each.

Stages alternate transports (gRPC then REST for each deployment kind), so both
sides of every comparison are measured minutes apart at most, in one run. Each
side runs the same number of processes: one per service (one for a floor).

- floor (bare echo): the C generator at each concurrency, the Python client at
  the middle one;
- mesh, plaintext: get_quote from the C generator and the Python client at each
  concurrency, then open loop up to the knee; place_order replayed (one fixed
  body, C generator) and from the Python client at the middle concurrency (the
  mTLS-off figure);
- mesh, mTLS (the default): place_order from the Python client at each
  concurrency, then open loop up to the knee; order_entry (batches of B, and
  single orders); fanout;
- mesh, mTLS, telemetry off: place_order, Python client, middle concurrency.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.deploy import Floor, MeshDeployment
from bench.runner import RunSettings
from bench.scenarios.common import Step, c_unary, python_closed, python_open
from bench.scenarios.fanout import fanout
from bench.scenarios.order_entry import order_entry_batches, order_entry_singles

SCENARIOS = ("floor", "get_quote", "place_order", "order_entry", "fanout", "layers")
TRANSPORTS = ("grpc", "rest")


@dataclass
class Stage:
    name: str
    make: Callable[[], Floor | MeshDeployment]
    steps: list[Step]


def _middle(levels: Sequence[int]) -> int:
    return levels[len(levels) // 2]


def build(settings: RunSettings, scenarios: Sequence[str], certs_dir: Path) -> list[Stage]:
    levels = settings.concurrency
    mid = _middle(levels)
    fractions = settings.rate_fractions
    state = settings.workdir / "state"
    stages: list[Stage] = []
    want = set(scenarios)

    for transport in TRANSPORTS:
        if "floor" in want:
            steps = [c_unary("get_quote", c, scenario="floor") for c in levels]
            steps.append(
                python_closed("get_quote", "marketdata", mid, floor=True, scenario="floor")
            )
            stages.append(
                Stage(
                    f"floor {transport}",
                    lambda t=transport: Floor(t, state / "logs"),  # type: ignore[misc]
                    steps,
                )
            )
    for transport in TRANSPORTS:
        steps = []
        if "get_quote" in want:
            steps += [c_unary("get_quote", c) for c in levels]
            steps += [python_closed("get_quote", "marketdata", c) for c in levels]
            if not settings.quick:  # quick mode runs the open loop on place_order only
                steps += [python_open("get_quote", "marketdata", f) for f in fractions]
        if "place_order" in want:
            steps.append(c_unary("place_order", mid, notes="replay: one fixed body"))
            if not settings.quick:  # the mTLS-off figure
                steps.append(python_closed("place_order", "orders", mid))
        if steps:
            stages.append(_mesh_stage(transport, state, certs_dir, steps, mtls=False))
    for transport in TRANSPORTS:
        steps = []
        if "place_order" in want:
            steps += [python_closed("place_order", "orders", c) for c in levels]
            steps += [python_open("place_order", "orders", f) for f in fractions]
        if "order_entry" in want:
            steps.append(order_entry_batches(settings.batch_size, settings.batch_concurrency))
            if not settings.quick:
                steps.append(order_entry_singles(mid))
        if "fanout" in want:
            steps.append(fanout(settings.fanout_subscribers, settings.fanout_trades_per_s))
        if steps:
            stages.append(_mesh_stage(transport, state, certs_dir, steps, mtls=True))
    if "place_order" in want and not settings.quick:
        for transport in TRANSPORTS:
            steps = [python_closed("place_order", "orders", mid)]
            stages.append(
                _mesh_stage(transport, state, certs_dir, steps, mtls=True, telemetry=False)
            )
    return stages


def _mesh_stage(
    transport: str,
    state: Path,
    certs_dir: Path,
    steps: list[Step],
    *,
    mtls: bool,
    telemetry: bool = True,
) -> Stage:
    name = f"mesh {transport} {'mTLS' if mtls else 'plaintext'}"
    name += "" if telemetry else " telemetry off"
    folder = state / name.replace(" ", "-")

    def make() -> MeshDeployment:
        return MeshDeployment(
            transport,  # type: ignore[arg-type]
            folder,
            mtls=mtls,
            telemetry=telemetry,
            certs_dir=certs_dir,
        )

    return Stage(name, make, steps)
