"""The spans of opentelemetry-instrumentation-grpc for unary calls, at a fraction
of its cost.

The stock aio interceptors cost ~60 µs of CPU per unary call on each side even
when the call is not sampled (bench/profiles/place_order.md): per call they
build the span's attributes (peer parsing, a metadata dict), enter context
managers, wrap the servicer context in a proxy, copy the metadata, and on the
client await the call's code and details to end a span nobody records.

These make the same spans (names, kinds, attributes, statuses, parents, W3C
propagation) and skip everything an unsampled call does not need:

- server: a WrappingInterceptor, so the per-method work (filter, attribute
  names) happens once; per call it extracts the caller's context only when the
  metadata carries one, starts the span with the sampler's attributes, adds the
  peer attributes only to a recording span, and reads the final status from the
  context afterwards instead of proxying the context;
- client (unary-unary only; streams keep the stock interceptors): not an
  interceptor at all (ClientSpans says why); the span is started, its context
  injected into the metadata, and, when not recording, the call goes on with
  nothing else to do.

An unsampled call still gets its ids and propagates them, so log lines of one
request share a trace id across services (tracing.py).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import unquote

import grpc
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.instrumentation.grpc.version import __version__
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.trace import SpanKind, Status, StatusCode

from services.runtime.interceptors.wrapping import Behavior, WrappingInterceptor

# The stock instrumentation's names, so spans look the same to a backend.
SCOPE = "opentelemetry.instrumentation.grpc"
SCHEMA_URL = "https://opentelemetry.io/schemas/1.11.0"
TRACED_PREFIX = "/trading.v1."

_OK = grpc.StatusCode.OK
# Server codes that are the server's failure; others leave the status UNSET
# (the stock instrumentation's _server_status).
_SERVER_ERRORS = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)
_get_current_span = trace.get_current_span
_set_span_in_context = trace.set_span_in_context
_attach, _detach = otel_context.attach, otel_context.detach


def tracer_of(provider: trace.TracerProvider | None) -> trace.Tracer:
    return trace.get_tracer(SCOPE, __version__, provider, schema_url=SCHEMA_URL)


def _base_attributes(method: str) -> dict[str, Any]:
    service, name = method.lstrip("/").split("/", 1)
    return {
        "rpc.system": "grpc",
        "rpc.grpc.status_code": _OK.value[0],
        "rpc.method": name,
        "rpc.service": service,
    }


def _peer_attributes(context: grpc.aio.ServicerContext, metadata: Any) -> dict[str, Any]:
    """What the stock server span adds from the caller: user agent and peer address."""
    attributes: dict[str, Any] = {}
    for key, value in metadata or ():
        if key == "user-agent":
            attributes["rpc.user_agent"] = value
    peer = context.peer()
    if not peer.startswith("unix:"):
        try:
            ip, port = peer.split(",")[0].split(":", 1)[1].rsplit(":", 1)
        except (IndexError, ValueError):
            return attributes
        ip = unquote(ip)
        attributes["net.peer.ip"] = ip
        attributes["net.peer.port"] = port
        if ip in ("[::1]", "127.0.0.1"):
            attributes["net.peer.name"] = "localhost"
    return attributes


def _server_status(code: grpc.StatusCode, details: Any) -> Status:
    if code in _SERVER_ERRORS:
        return Status(StatusCode.ERROR, f"{code}:{details}")
    return Status(StatusCode.UNSET, "")


class ServerSpans(WrappingInterceptor):
    """A SERVER span per trading.v1 call, current while the servicer runs."""

    def __init__(self, provider: trace.TracerProvider | None = None) -> None:
        super().__init__()
        self._tracer = tracer_of(provider)

    def wrap_handler(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        if not method.startswith(TRACED_PREFIX):
            return handler  # health, reflection: no per-call work at all
        return super().wrap_handler(handler, method)

    def _start(
        self, method: str, attributes: dict[str, Any], context: grpc.aio.ServicerContext
    ) -> tuple[trace.Span, object]:
        metadata = context.invocation_metadata()
        parent = None
        if metadata:
            fields = propagate.get_global_textmap().fields
            carrier = {key: value for key, value in metadata if key in fields}
            if carrier:
                parent = propagate.extract(carrier)
        span = self._tracer.start_span(
            method, context=parent, kind=SpanKind.SERVER, attributes=attributes
        )
        if span.is_recording():
            span.set_attributes(_peer_attributes(context, metadata))
        return span, _attach(_set_span_in_context(span, parent))

    @staticmethod
    def _finish(
        span: trace.Span, context: grpc.aio.ServicerContext, exc: BaseException | None
    ) -> None:
        if span.is_recording():
            code = context.code()
            if code is not None:  # abort() or set_code()
                span.set_attribute("rpc.grpc.status_code", code.value[0])
                if code is not _OK:
                    span.set_status(_server_status(code, context.details() or code.value[1]))
            if exc is not None and not isinstance(exc, asyncio.CancelledError | GeneratorExit):
                span.record_exception(exc)
        span.end()

    def wrap_unary_response(self, behavior: Behavior, method: str) -> Behavior:
        attributes = _base_attributes(method)

        async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
            if not is_instrumentation_enabled():
                return await behavior(request, context)
            span, token = self._start(method, attributes, context)
            try:
                response = await behavior(request, context)
            except BaseException as exc:
                self._finish(span, context, exc)
                raise
            finally:
                _detach(token)
            self._finish(span, context, None)
            return response

        return call

    def wrap_stream_response(self, behavior: Behavior, method: str) -> Behavior:
        attributes = _base_attributes(method)

        async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            if not is_instrumentation_enabled():
                async for response in behavior(request, context):
                    yield response
                return
            span, token = self._start(method, attributes, context)
            try:
                async for response in behavior(request, context):
                    yield response
            except GeneratorExit as exc:
                # Closed by the event loop's finalizer after its task ended (a
                # client that went away): that runs in another context, where the
                # token cannot be reset; the context it would restore is gone.
                self._finish(span, context, exc)
                raise
            except BaseException as exc:
                _detach(token)
                self._finish(span, context, exc)
                raise
            _detach(token)
            self._finish(span, context, None)

        return stream


class ClientSpans:
    """A CLIENT span per trading.v1 unary call, its context sent in the metadata.

    Not a grpc.aio interceptor: a channel with any unary interceptor sends every
    unary call through grpc's InterceptedUnaryUnaryCall (a task per call and a
    second one to run the chain), which costs the client more than the span
    itself. `instrument(channel)` wraps the channel's unary multicallables
    instead, so an unsampled call is a plain grpc call with one more header."""

    def __init__(self, provider: trace.TracerProvider | None = None) -> None:
        self._tracer = tracer_of(provider)

    def instrument(self, channel: grpc.aio.Channel) -> grpc.aio.Channel:
        """`channel`, its unary-unary calls traced (the other kinds are untouched)."""
        make = channel.unary_unary

        def unary_unary(
            method: str,
            request_serializer: Any = None,
            response_deserializer: Any = None,
            _registered_method: bool | None = False,
        ) -> Any:
            plain = make(method, request_serializer, response_deserializer, _registered_method)
            if not method.startswith(TRACED_PREFIX):
                return plain
            return _TracedUnaryUnary(self._tracer, plain, method)

        channel.unary_unary = unary_unary  # type: ignore[method-assign]
        return channel


class _TracedUnaryUnary:
    """One method's multicallable: starts the span, injects its context, and
    hands back grpc's own call; a recording span ends when the call is done."""

    def __init__(self, tracer: trace.Tracer, plain: Any, method: str) -> None:
        self._tracer = tracer
        self._plain = plain
        self._method = method
        self._attributes = _base_attributes(method)

    def __call__(
        self,
        request: Any,
        *,
        timeout: float | None = None,
        metadata: Any = None,
        credentials: grpc.CallCredentials | None = None,
        wait_for_ready: bool | None = None,
        compression: grpc.Compression | None = None,
    ) -> Any:
        if is_instrumentation_enabled():
            span = self._tracer.start_span(
                self._method, kind=SpanKind.CLIENT, attributes=self._attributes
            )
            carrier: dict[str, str] = {}
            propagate.inject(carrier, context=_set_span_in_context(span))
            metadata = grpc.aio.Metadata(*tuple(metadata or ()))
            for key, value in carrier.items():
                metadata[key] = value
        else:
            span = None
        call = self._plain(
            request,
            timeout=timeout,
            metadata=metadata,
            credentials=credentials,
            wait_for_ready=wait_for_ready,
            compression=compression,
        )
        if span is not None and span.is_recording():
            call.add_done_callback(functools.partial(_end_client_span, span))
        return call


_ending: set[asyncio.Task[None]] = set()  # strong references until each span ends


def _end_client_span(span: trace.Span, call: grpc.aio.Call) -> None:
    """The call is done: its status is known, so reading it does not wait."""
    task = asyncio.get_running_loop().create_task(_record_status(span, call))
    _ending.add(task)
    task.add_done_callback(_ending.discard)


async def _record_status(span: trace.Span, call: grpc.aio.Call) -> None:
    try:
        code = await call.code()
        span.set_attribute("rpc.grpc.status_code", code.value[0])
        if code != _OK:
            span.set_status(Status(StatusCode.ERROR, await call.details()))
    finally:
        span.end()
