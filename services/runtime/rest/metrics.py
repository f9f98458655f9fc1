"""RED metrics of a REST server, served at /metrics on the server's own port.

A pure ASGI middleware (no BaseHTTPMiddleware: no extra task or stream per
request) counts `http_server_requests_total{route,method,status}` and observes
`http_server_duration_seconds{route,method}` with the gRPC side's buckets. The
route is the matched path template ("/v1/reservations/{reservation_id}:release"),
which the router leaves in the scope, so label values stay few.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from discovery import Registration
from services.runtime.telemetry.mesh_metrics import MeshCollector
from services.runtime.telemetry.metrics import DURATION_BUCKETS, RegistrationCollector

UNMATCHED = "unmatched"  # one label value for every path no route knows


class HttpMetrics:
    """A REST server's metrics registry and its RED instruments."""

    def __init__(self, registration: Callable[[], Registration | None] = lambda: None) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "http_server_requests",
            "Requests served, by route template, method and response status",
            ("route", "method", "status"),
            registry=self.registry,
        )
        self.duration = Histogram(
            "http_server_duration_seconds",
            "Time from a request's start to its response's end (a stream's whole life)",
            ("route", "method"),
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(MeshCollector())
        self.registry.register(RegistrationCollector(registration))
        # Labelled children resolved once per (route, method[, status]).
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._histograms: dict[tuple[str, str], Any] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        counter = self._counters.get((route, method, status))
        if counter is None:
            counter = self._counters[(route, method, status)] = self.requests.labels(
                route, method, str(status)
            )
        histogram = self._histograms.get((route, method))
        if histogram is None:
            histogram = self._histograms[(route, method)] = self.duration.labels(route, method)
        counter.inc()
        histogram.observe(seconds)

    def response(self) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


class MetricsMiddleware:
    """Outermost: counts every request with the status the client saw (refused,
    shed and failed ones too)."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # what uvicorn answers when the app raised before responding

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", UNMATCHED) if route is not None else UNMATCHED
            self.metrics.observe(template, scope["method"], status, time.perf_counter() - start)
