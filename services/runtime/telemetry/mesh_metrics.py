"""The state of this process's mesh, as Prometheus reads it: per endpoint of each
service it calls, and per service, read at scrape time (no work per call).

open_mesh (services/runtime/peers.py) hands every mesh to `watch_mesh`; the
collector reads each mesh on its own event loop, because reading the retry budget
and the throttle rolls their windows, and the endpoint sets change on that loop:
from the scrape thread that would race the calls.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from clients.channel import MeshChannel
from clients.mesh import Mesh

_LOGGER = logging.getLogger(__name__)

# A loop that cannot answer within this long has bigger problems: the scrape
# leaves its mesh out rather than hang.
SNAPSHOT_TIMEOUT_SECONDS = 1.0

T = TypeVar("T")

# Every mesh of the process, with the loop that owns it; a mesh leaves when it is
# garbage (a closed one has no channels left, so it shows nothing meanwhile).
_MESHES: weakref.WeakKeyDictionary[Mesh, asyncio.AbstractEventLoop | None] = (
    weakref.WeakKeyDictionary()
)


def watch_mesh(mesh: Mesh) -> Mesh:
    """Shows `mesh` in this process's metrics; returns it."""
    try:
        loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    _MESHES[mesh] = loop
    return mesh


@dataclass(frozen=True, slots=True)
class EndpointState:
    endpoint: str
    healthy: bool
    ejected: bool
    outstanding: int
    latency: float


@dataclass(frozen=True, slots=True)
class ServiceState:
    service: str
    endpoints: tuple[EndpointState, ...]
    retries: int
    throttled: int
    retry_budget: int
    reject_probability: float
    panic: bool


def service_state(channel: MeshChannel) -> ServiceState:
    """A snapshot of one channel; call it on the channel's loop."""
    pool = channel.pool
    ejected = pool.outliers.ejected()
    return ServiceState(
        channel.service,
        tuple(
            EndpointState(
                instance_id,
                member.serving,
                instance_id in ejected,
                member.stats.outstanding,
                member.stats.latency,
            )
            for instance_id, member in pool.members.items()
        ),
        channel.retries,
        channel.throttled,
        channel.budget.available,
        channel.throttle.reject_probability() if channel.throttle is not None else 0.0,
        pool.panic,
    )


def _on_loop(loop: asyncio.AbstractEventLoop | None, read: Callable[[], T]) -> T | None:
    """`read()` on `loop` (directly when it is this thread's or is not running)."""
    try:
        current: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        current = None
    if loop is None or loop is current or not loop.is_running():
        return read()
    result: concurrent.futures.Future[T] = concurrent.futures.Future()

    def run() -> None:
        try:
            result.set_result(read())
        except Exception as exc:
            result.set_exception(exc)

    try:
        loop.call_soon_threadsafe(run)
    except RuntimeError:  # closed since
        return read()
    try:
        return result.result(SNAPSHOT_TIMEOUT_SECONDS)
    except TimeoutError:
        _LOGGER.warning("mesh metrics left out: its event loop did not answer within 1 s")
        return None


def snapshot() -> list[ServiceState]:
    """Every service called by every mesh of the process, once per service."""
    states: dict[str, ServiceState] = {}
    for mesh, loop in list(_MESHES.items()):
        found = _on_loop(loop, lambda m=mesh: [service_state(c) for c in m.open_channels.values()])
        for state in found or ():
            states.setdefault(state.service, state)  # two meshes, one service: the first
    return list(states.values())


def _gauge(name: str, documentation: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"trademesh_mesh_{name}", documentation, labels=labels)


class MeshCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        by_endpoint = ["service", "endpoint"]
        healthy = _gauge(
            "endpoint_healthy", "1 while grpc.health.v1 says the endpoint serves", by_endpoint
        )
        ejected = _gauge(
            "endpoint_ejected", "1 while outlier detection keeps the endpoint out", by_endpoint
        )
        outstanding = _gauge(
            "endpoint_outstanding", "Calls from this process in flight to the endpoint", by_endpoint
        )
        latency = _gauge(
            "endpoint_latency_seconds", "Peak-EWMA latency the balancer sees", by_endpoint
        )
        by_service = ["service"]
        retries = CounterMetricFamily(
            "trademesh_mesh_retries", "Retries sent to the service", labels=by_service
        )
        throttled = CounterMetricFamily(
            "trademesh_mesh_throttled",
            "Calls failed locally by adaptive throttling",
            labels=by_service,
        )
        budget = _gauge("retry_budget_available", "Retries the budget would grant now", by_service)
        reject = _gauge(
            "throttle_reject_probability",
            "Share of calls adaptive throttling fails locally now",
            by_service,
        )
        panic = _gauge(
            "panic", "1 while no endpoint is usable and calls spread over all of them", by_service
        )
        for state in snapshot():
            service = [state.service]
            for e in state.endpoints:
                labels = [state.service, e.endpoint]
                healthy.add_metric(labels, float(e.healthy))
                ejected.add_metric(labels, float(e.ejected))
                outstanding.add_metric(labels, e.outstanding)
                latency.add_metric(labels, e.latency)
            retries.add_metric(service, state.retries)
            throttled.add_metric(service, state.throttled)
            budget.add_metric(service, state.retry_budget)
            reject.add_metric(service, state.reject_probability)
            panic.add_metric(service, float(state.panic))
        yield from (healthy, ejected, outstanding, latency)
        yield from (retries, throttled, budget, reject, panic)
