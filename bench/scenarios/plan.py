"""The run: stages (a deployment, or a set of them, each) and the figures
measured on each.

Each side runs the same number of processes: one per service (one for a
floor). The meshes are one stage: every mesh the run needs (each transport
plaintext, mTLS, and mTLS with telemetry off) is started once and stays up, so
figures of both transports can alternate back to back; an idle mesh costs next
to nothing (no etcd, no traffic). In order:

- floor (bare echo), gRPC (grpc.aio; then pygrpc-native, where that optional
  extra is installed) then REST: the C generator at each concurrency, the Python
  client at the middle one;
- plaintext, gRPC then REST: get_quote from the C generator and the Python
  client at each concurrency; place_order replayed (one fixed body, C
  generator); then get_quote's open loops;
- mTLS (the default), gRPC then REST: place_order from the Python client at
  each concurrency; order_entry (batches of B, and single orders); fanout (N
  subscribers, then, outside --quick, the issue's 1,000); then place_order's
  open loops;
- open loops: each rate on both transports back to back, at fractions of the
  lower of the two closed-loop maxima, so p99 compares at the same rate;
- costs, gRPC then REST: PlaceOrder on the mTLS, plaintext and telemetry-off
  meshes in N alternating rounds (bench/scenarios/costs.py).
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Protocol

from bench.deploy import DeploymentSet, Floor, MeshDeployment
from bench.runner import RunSettings
from bench.scenarios import costs
from bench.scenarios.common import Step, c_unary, member, on, python_closed, python_open
from bench.scenarios.fanout import TARGET_SUBSCRIBERS, TARGET_TRADES_PER_S, fanout
from bench.scenarios.order_entry import order_entry_batches, order_entry_singles

SCENARIOS = ("floor", "get_quote", "place_order", "order_entry", "fanout", "costs", "layers")
TRANSPORTS = ("grpc", "rest")
NATIVE_SKIPPED = (
    "floor: pygrpc-native is not installed, so its bare floor is skipped "
    "(pip install -e '.[native]')"
)
_LOGGER = logging.getLogger(__name__)


class Startable(Protocol):
    def start(self) -> object: ...

    def stop(self) -> None: ...


@dataclass
class Stage:
    name: str
    make: Callable[[], Startable]
    steps: list[Step]


def _middle(levels: Sequence[int]) -> int:
    return levels[len(levels) // 2]


def native_version() -> str | None:
    """pygrpc-native's version where it is importable (the `native` extra), else None."""
    if importlib.util.find_spec("pygrpc_native") is None:
        return None
    try:
        return metadata.version("pygrpc-native")
    except metadata.PackageNotFoundError:
        return "unknown version"


def floor_stages(levels: Sequence[int], log_dir: Path) -> list[Stage]:
    """The bare echo floors: grpc.aio, pygrpc-native where installed, aiohttp. The
    same drivers and loads on each; pygrpc-native's is measured beside grpc.aio's
    (the gRPC floor) and is not paired with REST (bench/floors REFERENCE_FLOORS)."""
    mid = _middle(levels)
    native = native_version()
    if native is None:
        _LOGGER.warning(NATIVE_SKIPPED)

    def floor(make: Callable[[], Floor], name: str, notes: str = "") -> Stage:
        steps = [c_unary("get_quote", c, scenario="floor", notes=notes) for c in levels]
        steps.append(
            python_closed("get_quote", "marketdata", mid, floor=True, scenario="floor", notes=notes)
        )
        return Stage(name, make, steps)

    stages = [floor(lambda: Floor("grpc", log_dir), "floor grpc")]
    if native is not None:
        stages.append(
            floor(
                lambda: Floor("grpc", log_dir, server="pygrpc-native"),
                "floor grpc (pygrpc-native)",
                f"pygrpc-native {native}",
            )
        )
    stages.append(floor(lambda: Floor("rest", log_dir), "floor rest"))
    return stages


def build(settings: RunSettings, scenarios: Sequence[str], certs_dir: Path) -> list[Stage]:
    levels = settings.concurrency
    mid = _middle(levels)
    fractions = settings.rate_fractions
    state = settings.workdir / "state"
    stages: list[Stage] = []
    want = set(scenarios)

    if "floor" in want:
        stages += floor_stages(levels, state / "logs")

    def open_steps(call: str, service: str, setup: str) -> list[Step]:
        # Each rate on both transports back to back, alternating which goes first.
        return [
            python_open(call, service, f, t, setup)
            for i, f in enumerate(fractions)
            for t in (TRANSPORTS if i % 2 == 0 else TRANSPORTS[::-1])
        ]

    steps = []
    for transport in TRANSPORTS:
        plain = member(transport, "plaintext")
        if "get_quote" in want:
            steps += [on(plain, c_unary("get_quote", c)) for c in levels]
            steps += [on(plain, python_closed("get_quote", "marketdata", c)) for c in levels]
        if "place_order" in want:
            steps.append(on(plain, c_unary("place_order", mid, notes="replay: one fixed body")))
    if "get_quote" in want and not settings.quick:  # quick: the open loop of place_order only
        steps += open_steps("get_quote", "marketdata", "plaintext")
    for transport in TRANSPORTS:
        mtls = member(transport, "mTLS")
        if "place_order" in want:
            steps += [on(mtls, python_closed("place_order", "orders", c)) for c in levels]
        if "order_entry" in want:
            batches = order_entry_batches(settings.batch_size, settings.batch_concurrency)
            steps.append(on(mtls, batches))
            if not settings.quick:
                steps.append(on(mtls, order_entry_singles(mid)))
        if "fanout" in want:
            steps.append(
                on(mtls, fanout(settings.fanout_subscribers, settings.fanout_trades_per_s))
            )
            # The target size (fanout.TARGET_SUBSCRIBERS), unless asked already.
            if not settings.quick and settings.fanout_subscribers != TARGET_SUBSCRIBERS:
                steps.append(on(mtls, fanout(TARGET_SUBSCRIBERS, TARGET_TRADES_PER_S)))
    if "place_order" in want:
        steps += open_steps("place_order", "orders", "mTLS")
    if "costs" in want:
        for transport in TRANSPORTS:
            steps += costs.costs_steps(transport, settings.costs_rounds, mid)
    if steps:
        stages.append(Stage("meshes", lambda: _meshes(steps, state, certs_dir), steps))
    return stages


def _meshes(steps: list[Step], state: Path, certs_dir: Path) -> DeploymentSet:
    """Every mesh the steps use, each transport in each set-up, started once."""
    used = {key for step in steps for key in getattr(step, "members", ())}
    members = {}
    for setup in ("plaintext", "mTLS", "telemetry off"):
        for transport in TRANSPORTS:
            key = member(transport, setup)
            if key in used:
                members[key] = MeshDeployment(
                    transport,  # type: ignore[arg-type]
                    state / key.replace(" ", "-"),
                    mtls=setup != "plaintext",
                    telemetry=setup != "telemetry off",
                    certs_dir=certs_dir,
                )
    return DeploymentSet(members)
