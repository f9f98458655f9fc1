"""Prometheus metrics of one serving process, at http://<host>:<metrics port>/metrics.

Three sources, one registry per server (not prometheus_client's global one, so a
test can run several servers in one process):
- per-method RED metrics of the server, counted by interceptors/metrics.py;
- the state of the process's mesh (the endpoints it calls), read at scrape time
  by telemetry/mesh_metrics.py;
- the server's registration in etcd, read at scrape time below.

Names follow OpenTelemetry's RPC semantic conventions as Prometheus spells them:
rpc.server.duration in seconds -> `rpc_server_duration_seconds`, the attribute
rpc.grpc.status_code -> the label `rpc_grpc_status_code`, numeric as in OTel
(0 OK, 5 NOT_FOUND, 14 UNAVAILABLE...).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterator
from wsgiref.simple_server import WSGIServer

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from discovery import Registration
from services.runtime.settings import ServerSettings
from services.runtime.telemetry.mesh_metrics import MeshCollector

_LOGGER = logging.getLogger(__name__)

# The default metrics port is the gRPC port + 1000 (+ the worker's index).
METRICS_PORT_OFFSET = 1000

# From 100 µs (an in-memory risk check) to 10 s (a stream's short life, a call
# waiting on a slow downstream): sub-millisecond steps matter for the hot methods.
DURATION_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip


def metrics_port(settings: ServerSettings, grpc_port: int, worker: int = 0) -> int | None:
    """The port /metrics is served on, None when off (--metrics-port -1)."""
    if settings.metrics_port < 0:
        return None
    base = settings.metrics_port or grpc_port + METRICS_PORT_OFFSET
    return base + worker


class MethodMetrics:
    """One method's labelled children, resolved once: per call, no label lookups."""

    __slots__ = ("_by_code", "_labels", "_requests", "active", "duration")

    def __init__(self, rpc: RpcMetrics, method: str) -> None:
        service, _, name = method.lstrip("/").rpartition("/")
        self._labels = (service, name)
        self._requests = rpc.requests
        self.active = rpc.active.labels(service, name)
        self.duration = rpc.duration.labels(service, name)
        self._by_code: dict[grpc.StatusCode, Counter] = {}
        self.requests(grpc.StatusCode.OK)  # a method shows up with 0 before its first call

    def requests(self, code: grpc.StatusCode) -> Counter:
        """The request counter of this method and `code`."""
        found = self._by_code.get(code)
        if found is None:
            found = self._by_code[code] = self._requests.labels(*self._labels, str(code.value[0]))
        return found


class RpcMetrics:
    """The server's RED instruments."""

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ("rpc_service", "rpc_method")
        self.requests = Counter(
            "rpc_server_requests",
            "Calls served, by final status; a stream counts when it ends",
            (*labels, "rpc_grpc_status_code"),
            registry=registry,
        )
        self.duration = Histogram(
            "rpc_server_duration_seconds",
            "Time from a call's start to its end (a stream's whole life)",
            labels,
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.active = Gauge(
            "rpc_server_active_requests",
            "Calls in flight, streams included",
            labels,
            registry=registry,
        )

    def for_method(self, method: str) -> MethodMetrics:
        return MethodMetrics(self, method)


class RegistrationCollector(Collector):
    """Whether the server is in the registry, read at scrape time."""

    def __init__(self, registration: Callable[[], Registration | None]) -> None:
        self._registration = registration

    def collect(self) -> Iterator[Metric]:
        labels = ["service", "instance"]
        registered = GaugeMetricFamily(
            "trademesh_registry_registered",
            "1 while this instance's key is in the registry (etcd), 0 while it is not",
            labels=labels,
        )
        puts = CounterMetricFamily(
            "trademesh_registry_registrations",
            "Times the key was put in the registry: the first, then one per lease lost",
            labels=labels,
        )
        found = self._registration()
        if found is not None:
            values = [found.endpoint.service, found.endpoint.instance_id]
            registered.add_metric(values, 1.0 if found.registered else 0.0)
            puts.add_metric(values, found.registrations)
        yield registered
        yield puts


class ServerMetrics:
    """A server's metrics registry and its /metrics endpoint."""

    def __init__(self, registration: Callable[[], Registration | None] = lambda: None) -> None:
        self.registry = CollectorRegistry()
        self.rpc = RpcMetrics(self.registry)
        self.registry.register(MeshCollector())
        self.registry.register(RegistrationCollector(registration))
        self.port: int | None = None
        self._httpd: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self, host: str, port: int) -> None:
        """Serves /metrics in a thread. A port that cannot be bound is logged and
        the process serves on without metrics, as go-zero's Prometheus agent does:
        metrics must never take trading down."""
        try:
            self._httpd, self._thread = start_http_server(port, host, registry=self.registry)
        except (OSError, OverflowError) as exc:
            _LOGGER.error("no metrics: cannot serve /metrics on %s port %d (%s)", host, port, exc)
            return
        self.port = port
        _LOGGER.info("metrics on http://%s/metrics", f"{host}:{port}")

    async def stop(self) -> None:
        httpd, thread, self._httpd, self._thread = self._httpd, self._thread, None, None
        if httpd is None or thread is None:
            return
        # shutdown() waits for serve_forever's next poll (<= 0.5 s): not on the loop.
        await asyncio.to_thread(httpd.shutdown)
        httpd.server_close()
        thread.join()
