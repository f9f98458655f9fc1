"""Builds one REST process's ASGI app from its services' routers.

FastAPI for routing, request models and OpenAPI (/openapi.json, /docs); errors
become RFC 9457 problem documents (problems.py); /healthz answers like
grpc.health.v1 and /metrics serves Prometheus. Around the FastAPI app, pure ASGI
wrappers count every request and shed load (metrics.py, middleware.py).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from opentelemetry import trace
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp

from services import errors
from services.runtime.authz_policy import AuthzPolicy
from services.runtime.rest.authz import authorizer, route_methods
from services.runtime.rest.metrics import HttpMetrics, MetricsMiddleware
from services.runtime.rest.middleware import HANDLED, HandledErrors, LoadShedding
from services.runtime.rest.problems import HTTP_STATUS, problem, problem_response
from services.runtime.rest.responses import JsonResponse

_LOGGER = logging.getLogger(__name__)

__version__ = "0.1.0"

# The problem document as OpenAPI shows it on every route's error responses.
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem document; `code` is the gRPC status code name",
    "properties": {
        "type": {"type": "string", "example": "about:blank"},
        "title": {"type": "string", "example": "INVALID_ARGUMENT"},
        "status": {"type": "integer", "example": 400},
        "detail": {"type": "string"},
        "code": {"type": "string", "enum": sorted(HTTP_STATUS)},
        "field_violations": {
            "type": "array",
            "description": "only for INVALID_ARGUMENT: each invalid field and why",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "description": {"type": "string"}},
            },
        },
    },
    "required": ["type", "title", "status", "detail", "code"],
}
_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "default": {
        "description": "An error, as an RFC 9457 problem document (application/problem+json)",
        "content": {"application/problem+json": {"schema": PROBLEM_SCHEMA}},
    }
}
# Statuses FastAPI/Starlette raise themselves (unknown path, wrong method...).
_CODE_BY_HTTP = {
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "UNIMPLEMENTED",
    409: "ABORTED",
    413: "RESOURCE_EXHAUSTED",
    429: "RESOURCE_EXHAUSTED",
}
_SOURCES = frozenset({"body", "query", "path", "header", "cookie"})
_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


class Health:
    """The serving status /healthz reports, per service name and overall ("")."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = frozenset(names) | {""}
        self.serving = False

    def response(self, service: str) -> Response:
        if service not in self.names:
            return problem("NOT_FOUND", f"unknown service {service!r}")
        if self.serving:
            return JsonResponse({"status": "SERVING"})
        return JsonResponse({"status": "NOT_SERVING"}, status_code=503)


def field_path(loc: Sequence[int | str]) -> str:
    """("body", "orders", 3, "price") -> "orders[3].price"."""
    parts = list(loc[1:] if loc and loc[0] in _SOURCES else loc)
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f"{'.' if path else ''}{part}"
    return path or (str(loc[0]) if loc else "body")


def _violations(exc: RequestValidationError) -> list[errors.FieldViolation]:
    found = []
    for error in exc.errors():
        if error.get("type") == "json_invalid":
            found.append(errors.FieldViolation("body", f"not valid JSON: {error.get('msg', '')}"))
        else:
            found.append(errors.FieldViolation(field_path(error["loc"]), error["msg"]))
    return found or [errors.FieldViolation("body", "invalid request")]


async def _domain_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.DomainError)
    return problem_response(exc)


async def _invalid_request(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    content_type = request.headers.get("content-type", "")
    if request.method in _WITH_BODY and content_type and "json" not in content_type:
        # FastAPI reads only JSON bodies; say so rather than "not an object".
        violation = errors.FieldViolation(
            "body", f"must be JSON sent as content-type application/json, not {content_type}"
        )
        return problem_response(errors.InvalidArgument([violation]))
    return problem_response(errors.InvalidArgument(_violations(exc)))


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _CODE_BY_HTTP.get(exc.status_code, "INVALID_ARGUMENT")
    return problem(code, str(exc.detail), headers=exc.headers, status=exc.status_code)


async def _unexpected(request: Request, exc: Exception) -> Response:
    # The client gets a reference to quote, never the traceback.
    reference = uuid.uuid4().hex[:16]
    _LOGGER.error(
        "internal error %s in %s %s", reference, request.method, request.url.path, exc_info=exc
    )
    request.scope[HANDLED] = True
    return problem("INTERNAL", f"internal error; reference {reference}")


# Probes and scrapes would each make a root span.
_UNTRACED_URLS = "/healthz,/metrics"


def tracing_on() -> bool:
    """True once the process set up tracing (configure_tracing): in-process
    servers in tests, and processes run with OTEL_SDK_DISABLED=true, trace nothing."""
    return isinstance(trace.get_tracer_provider(), TracerProvider)


def build_app(
    bindings: Sequence[Any],
    health: Health,
    *,
    metrics: HttpMetrics | None = None,
    policy: AuthzPolicy | None = None,
    max_concurrent: int | None = None,
    max_body_bytes: int | None = None,
) -> ASGIApp:
    """The ASGI app serving `bindings` (RestBinding: name, router)."""
    names = [b.name for b in bindings]
    app = FastAPI(
        title=f"trademesh {', '.join(n.rpartition('.')[2] for n in names)}",
        version=__version__,
        description=(
            "HTTP/JSON variant of the trademesh gRPC services "
            f"({', '.join(names)}): the same resources, messages (proto field names, "
            "enum value names, int64 as numbers) and errors. Errors are RFC 9457 problem "
            "documents carrying the gRPC status code name; streams are Server-Sent Events."
        ),
        default_response_class=JsonResponse,
        responses=_ERROR_RESPONSES,
        redoc_url=None,
        max_body_size=max_body_bytes,
    )
    app.add_exception_handler(errors.DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)

    for binding in bindings:
        guard = []
        if policy is not None:
            guard = [Depends(authorizer(policy, route_methods(binding.name, binding.router)))]
        app.include_router(binding.router, tags=[binding.name], dependencies=guard)

    @app.get("/healthz", tags=["operations"], summary="Serving status (grpc.health.v1 style)")
    async def healthz(service: str = "") -> Response:
        return health.response(service)

    if metrics is not None:

        @app.get("/metrics", tags=["operations"], summary="Prometheus metrics")
        async def prometheus() -> Response:
            return metrics.response()

    if tracing_on():
        # One server span per request, named by route template, child of the
        # caller's traceparent: the same trace the gRPC variant makes.
        FastAPIInstrumentor.instrument_app(
            app, excluded_urls=_UNTRACED_URLS, exclude_spans=["receive", "send"]
        )
    asgi: ASGIApp = HandledErrors(app)
    if max_concurrent is not None:
        asgi = LoadShedding(asgi, max_concurrent)
    if metrics is not None:
        asgi = MetricsMiddleware(asgi, metrics)
    return asgi
