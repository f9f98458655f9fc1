"""Traces of one serving process: the OpenTelemetry SDK set up once, every grpc.aio
server and channel instrumented, finished spans exported.

Where spans go, first match wins:

    OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT set
        -> OTLP over gRPC (the exporter reads the other OTEL_EXPORTER_OTLP_* itself)
    --trace-file FILE (settings.trace_file)
        -> FILE, one JSON object per finished span (trace_files.py)
    neither
        -> nowhere; ids are still made and propagated, so the log lines of one
           request carry the same trace id in every service it reaches

Sampling follows OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG when set. The default
here is `parentbased_traceidratio` at 1% (the SDK's own is parentbased_always_on):
a caller's decision is always followed, so a traced client gets its whole trace,
while requests arriving untraced (grpcurl, probes, load generators) become a
sampled root once in a hundred. An unsampled call pays for ids and propagation
only, which keeps tracing at the default sampling cheap.

Only `trading.v1` methods are traced: health watches, reflection and etcd's
lease keep-alives (aetcd also uses grpc.aio) would each make a root span.

Processes started by run()/run_worker() call configure_tracing() after any fork;
in-process servers (serving(), tests) install nothing unless a test opts in.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
from pathlib import Path
from typing import Any

import grpc
from opentelemetry import trace
from opentelemetry.instrumentation.grpc import aio_client_interceptors
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, Sampler, TraceIdRatioBased

from services.runtime.telemetry.grpc_spans import ClientSpans, ServerSpans
from services.runtime.telemetry.trace_files import JsonLinesSpanExporter

_LOGGER = logging.getLogger(__name__)

DEFAULT_SAMPLE_RATIO = 0.01
TRACED_PREFIX = "/trading.v1."
_OTLP_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")

_provider: TracerProvider | None = None
# What instrument_grpc() puts first on every grpc.aio server; the patched
# grpc.aio.server and server_interceptors() hand out this one list.
_server_first: list[grpc.aio.ServerInterceptor] = []


def is_traced(details: Any) -> bool:
    """The instrumentation's filter: a client's call details carry the method as
    bytes (grpc/grpc#31092), a server's as str."""
    method = details.method
    if isinstance(method, bytes):
        return method.startswith(b"/trading.v1.")
    return bool(method.startswith(TRACED_PREFIX))


def default_sampler() -> Sampler | None:
    """None when OTEL_TRACES_SAMPLER is set (the SDK reads it), else ours."""
    if os.environ.get("OTEL_TRACES_SAMPLER"):
        return None
    return ParentBased(TraceIdRatioBased(DEFAULT_SAMPLE_RATIO))


def span_exporter(trace_file: Path | None) -> SpanExporter | None:
    if any(os.environ.get(name) for name in _OTLP_VARIABLES):
        # Imported here: it loads grpc's sync stack and protobufs only when used.
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    if trace_file is not None:
        return JsonLinesSpanExporter(trace_file)
    return None


def build_tracer_provider(
    service: str,
    instance: str,
    trace_file: Path | None = None,
    *,
    sampler: Sampler | None = None,
    exporter: SpanExporter | None = None,
) -> TracerProvider:
    """A provider for `service` (the registry name) exporting as the module doc
    says, unless `exporter` is given. Sets nothing global."""
    resource = Resource.create(
        {"service.name": service, "service.instance.id": instance, "process.pid": os.getpid()}
    )
    provider = TracerProvider(
        sampler=sampler if sampler is not None else default_sampler(),
        resource=resource,
        shutdown_on_exit=False,  # shutdown_tracing() flushes; forked workers skip atexit
    )
    exporter = exporter if exporter is not None else span_exporter(trace_file)
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def instrument_grpc(provider: TracerProvider | None = None, *, servers: bool = True) -> None:
    """Every grpc.aio channel (and server, with `servers`) made from now on opens
    a span per trading.v1 call and propagates the W3C trace context. Process-wide:
    call it before the first server or channel exists.

    Unary calls get the lean spans of grpc_spans.py (the stock interceptors cost
    ~60 µs per call and side even unsampled); streams keep the stock client ones."""
    if servers and not getattr(grpc.aio.server, _PATCHED, False):
        _server_first[:] = [ServerSpans(provider)]
        grpc.aio.server = _prepending(grpc.aio.server, _server_first)
    if not getattr(grpc.aio.insecure_channel, _PATCHED, False):
        spans = ClientSpans(provider)
        streams = aio_client_interceptors(tracer_provider=provider, filter_=is_traced)[1:]
        grpc.aio.insecure_channel = _with_client_spans(grpc.aio.insecure_channel, spans, streams)
        grpc.aio.secure_channel = _with_client_spans(grpc.aio.secure_channel, spans, streams)


_PATCHED = "_trademesh_traced"


def _prepending(make: Any, first: list[Any], then: Any = None) -> Any:
    """`make` (a grpc.aio server or channel constructor) with `first` put before
    the interceptors it is given, however they are passed, and what it makes
    passed through `then` when given."""
    signature = inspect.signature(make)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args, **kwargs)
        bound.arguments["interceptors"] = [*first, *(bound.arguments.get("interceptors") or ())]
        made = make(*bound.args, **bound.kwargs)
        return made if then is None else then(made)

    setattr(wrapper, _PATCHED, True)
    return functools.update_wrapper(wrapper, make)


def server_interceptors() -> list[grpc.aio.ServerInterceptor]:
    """The interceptors instrument_grpc() puts first on every grpc.aio.server()
    (none before it ran): the span interceptor, so its span covers the others. A
    server not made by grpc.aio.server() (native_server.py) puts them first itself."""
    return list(_server_first)


def _with_client_spans(make_channel: Any, spans: ClientSpans, streams: list[Any]) -> Any:
    """A channel constructor whose channels trace before their own interceptors:
    unary calls through `spans` (no grpc interceptor, see ClientSpans), streams
    through the stock interceptors."""
    return _prepending(make_channel, streams, spans.instrument)


def configure_tracing(service: str, instance: str, trace_file: Path | None = None) -> None:
    """Once per process (after any fork): the global provider and gRPC instrumentation."""
    global _provider
    if _provider is not None:
        return
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        # The standard off switch, for a run that wants no tracing cost at all
        # (unsampled unary calls cost a few µs per hop: bench/profiles/place_order.md).
        _LOGGER.info("tracing: off (OTEL_SDK_DISABLED=true)")
        return
    _provider = build_tracer_provider(service, instance, trace_file)
    trace.set_tracer_provider(_provider)
    instrument_grpc(_provider)
    where = (
        "OTLP"
        if any(os.environ.get(name) for name in _OTLP_VARIABLES)
        else (str(trace_file) if trace_file else "nowhere (ids propagate)")
    )
    sampler = os.environ.get("OTEL_TRACES_SAMPLER") or (
        f"parentbased_traceidratio {DEFAULT_SAMPLE_RATIO}"
    )
    _LOGGER.info("tracing: spans to %s, sampler %s", where, sampler)


def shutdown_tracing() -> None:
    """Exports what is still queued; the end of a serving process."""
    global _provider
    provider, _provider = _provider, None
    if provider is not None:
        provider.shutdown()
