"""What the scenarios share: one figure per step, and how each driver is aimed.

A step measures exactly one figure on the stage's deployment, so the total is
known before the run starts (progress shows [i/N]).
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Callable
from typing import Any

import orjson

from bench.deploy import CALLS, GRPC_METHODS
from bench.drivers import ghz, h2load, wrk
from bench.measurement import Measurement
from bench.payloads import QUOTE_SYMBOL, OrderFlow, quote_request, replay_order_fields
from bench.runner import Deployment, Figure, Runner

Step = Callable[[Runner, Deployment], Measurement]
_tags = itertools.count()
# Unique to this run: the counter starts again in every run, and a run reusing
# an earlier run's workdir (the same --out name) would otherwise send that run's
# client_order_ids again, so its orders would be idempotent replays that never
# reach the matching engine (the fan-out then had no trade to publish).
_RUN = secrets.token_hex(4)


def unique_tag(runner: Runner, what: str) -> str:
    """A client_order_id prefix no other run, figure or earlier benchmark used."""
    return f"{what}-{runner.settings.workdir.name}-{_RUN}-{next(_tags)}"


def c_driver(transport: str) -> str:
    """The C load generator for a transport: ghz where installed, else h2load; wrk."""
    if transport == "rest":
        return "wrk"
    return "ghz" if ghz.available() else "h2load"


def c_unary(call: str, concurrency: int, *, scenario: str = "", notes: str = "") -> Step:
    """`call` ("get_quote", "place_order") from the transport's C load generator.
    place_order posts one fixed body: the first call places the order, every later
    one is an idempotent replay (the generators cannot vary the body per call)."""

    def step(runner: Runner, dep: Deployment) -> Measurement:
        driver = c_driver(dep.transport)
        figure = Figure(scenario or call, driver, "closed", concurrency=concurrency, notes=notes)
        service, _method, route, verb = CALLS[call]
        address = dep.address(service)  # type: ignore[attr-defined]
        workdir = runner.settings.workdir
        tag = unique_tag(runner, "replay")
        if call == "get_quote":
            message, data, body = (
                quote_request().SerializeToString(),
                {"symbol": QUOTE_SYMBOL},
                None,
            )
            url_path = route.replace("{symbol}", QUOTE_SYMBOL)
        else:
            fields = replay_order_fields(tag)
            message, data = OrderFlow(tag).proto(0).SerializeToString(), fields
            body, url_path = orjson.dumps(fields), route

        def run(seconds: float) -> dict[str, Any]:
            if driver == "wrk":
                return wrk.run(
                    f"http://{address}{url_path}",
                    method=verb,
                    body=body,
                    concurrency=concurrency,
                    duration_s=seconds,
                    workdir=workdir,
                )
            generator = ghz.grpc_unary if driver == "ghz" else h2load.grpc_unary
            payload: Any = data if driver == "ghz" else message
            return generator(
                address,
                GRPC_METHODS[call],
                payload,
                concurrency=concurrency,
                duration_s=seconds,
                workdir=workdir,
            )

        return runner.tool(dep, figure, call, run)

    return step


def python_driver(transport: str, floor: bool = False) -> str:
    if transport == "rest":
        return "python-http"
    return "python-grpc" if floor else "python-mesh"


def python_spec(
    runner: Runner, dep: Deployment, driver: str, service: str, **fields: Any
) -> dict[str, Any]:
    s = runner.settings
    spec: dict[str, Any] = {
        "client": driver,
        "service": service,
        "address": dep.address(service),  # type: ignore[attr-defined]
        "warmup_s": s.warmup_s,
        "duration_s": s.duration_s,
    }
    tls = getattr(dep, "tls", None)
    if tls is not None:
        spec["tls"] = {"ca": str(tls.ca), "cert": str(tls.cert), "key": str(tls.key)}
    spec.update(fields)
    if driver == "python-http" and "connections" not in spec:
        spec["connections"] = spec.get("concurrency") or 0  # one keep-alive connection each
    return spec


def python_closed(
    call: str,
    service: str,
    concurrency: int,
    *,
    floor: bool = False,
    scenario: str = "",
    batch: int = 1,
    notes: str = "",
) -> Step:
    def step(runner: Runner, dep: Deployment) -> Measurement:
        driver = python_driver(dep.transport, floor)
        figure = Figure(
            scenario or call,
            driver,
            "closed",
            concurrency=concurrency,
            items_per_request=batch,
            notes=notes,
        )
        spec = python_spec(
            runner,
            dep,
            driver,
            service,
            call=call,
            load="closed",
            concurrency=concurrency,
            batch=batch,
            tag=unique_tag(runner, call),
        )
        return runner.python(dep, figure, spec)

    return step


# REST open loops use a pool of as many keep-alive connections as the closed-loop
# concurrency that reached the knee (it carried that rate), at least this many.
MIN_OPEN_CONNECTIONS = 16


def member(transport: str, setup: str) -> str:
    """A mesh's key in the run's DeploymentSet: "grpc mTLS", "rest plaintext", ..."""
    return f"{transport} {setup}"


def on(key: str, step: Step) -> Step:
    """`step` aimed at one member of the stage's DeploymentSet (`.members` names
    the members a step uses, so the stage starts only those)."""

    def aimed(runner: Runner, members: Any) -> Measurement:
        return step(runner, members.parts[key])

    aimed.members = (key,)  # type: ignore[attr-defined]
    return aimed


def python_open(call: str, service: str, fraction: float, transport: str, setup: str) -> Step:
    """Open loop on the `transport` mesh of `setup` in the run's DeploymentSet
    (which holds both transports), at `fraction` of the lower of the two
    closed-loop maxima (same scenario, setup and driver role): both transports
    get the same rate, so their p99 compare, and the levels go up to the slower
    side's knee.

    The pool is bounded and opened before the schedule starts (see
    bench/drivers/python_load.py), then the warm-up runs at the target rate on
    those connections: an unbounded pool opens a connection for every call that
    finds none idle, so one short server stall turns into hundreds of new
    connections that the server must accept while it is behind (seconds of
    collapse at 25% load in earlier runs)."""

    def step(runner: Runner, members: Any) -> Measurement:
        sides = {t: members.parts[member(t, setup)] for t in ("grpc", "rest")}
        knees = {t: runner.knee(call, part, python_driver(t)) for t, part in sides.items()}
        best = min((k.throughput_rps for k in knees.values() if k), default=0.0)
        rate = max(10.0, round(best * fraction))
        dep, knee = sides[transport], knees[transport]
        driver = python_driver(transport)
        connections = max(MIN_OPEN_CONNECTIONS, (knee.concurrency or 0) if knee else 0)
        maxima = ", ".join(f"{t} {k.throughput_rps:,.0f}" for t, k in knees.items() if k)
        notes = f"{fraction:.0%} of the lower closed-loop max ({maxima}/s)"
        figure = Figure(call, driver, "open", rate=rate, notes=notes)
        spec = python_spec(
            runner,
            dep,
            driver,
            service,
            call=call,
            load="open",
            rate=rate,
            max_in_flight=1000,
            connections=connections,
            warmup_s=runner.settings.open_warmup_s,
            tag=unique_tag(runner, call),
        )
        return runner.python(dep, figure, spec)

    step.members = (member("grpc", setup), member("rest", setup))  # type: ignore[attr-defined]
    return step
