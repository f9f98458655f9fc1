"""ClientSpans on a real loopback server: the client span of a trading.v1 unary
call, its context in the request metadata, and no grpc interceptor path."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, Sampler
from opentelemetry.trace import SpanKind, StatusCode

from services.runtime.telemetry.grpc_spans import ClientSpans

TRACED = "/trading.v1.TestService/Echo"
UNTRACED = "/grpc.health.v1.Health/Check"


class Recorder(grpc.GenericRpcHandler):
    """Answers every method with its request; b"fail" fails FAILED_PRECONDITION.
    Keeps the metadata each call arrived with."""

    def __init__(self) -> None:
        self.metadata: list[dict[str, str]] = []

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        async def echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            self.metadata.append(dict(context.invocation_metadata() or ()))
            if request == b"fail":
                await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "not now")
            return request

        return grpc.unary_unary_rpc_method_handler(echo)


@pytest.fixture
async def server() -> AsyncIterator[tuple[Recorder, str]]:
    recorder = Recorder()
    served = grpc.aio.server()
    served.add_generic_rpc_handlers([recorder])
    port = served.add_insecure_port("127.0.0.1:0")
    await served.start()
    yield recorder, f"127.0.0.1:{port}"
    await served.stop(0)


def traced(sampler: Sampler) -> tuple[ClientSpans, InMemorySpanExporter, TracerProvider]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=sampler)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return ClientSpans(provider), exporter, provider


def traceparent(metadata: dict[str, str]) -> tuple[str, str, bool]:
    """(trace id, span id, sampled) of the W3C header a call arrived with."""
    _version, trace_id, span_id, flags = metadata["traceparent"].split("-")
    return trace_id, span_id, bool(int(flags, 16) & 1)


async def test_a_sampled_call_has_its_span_and_sends_its_context(server) -> None:
    recorder, address = server
    spans, exporter, provider = traced(ALWAYS_ON)
    async with spans.instrument(grpc.aio.insecure_channel(address)) as channel:
        call = channel.unary_unary(TRACED)(b"hi")
        assert type(call).__name__ == "UnaryUnaryCall"  # not grpc's InterceptedUnaryUnaryCall
        assert await call == b"hi"
        (span,) = exporter.get_finished_spans()  # ended by the time the caller resumes
    assert (span.name, span.kind) == (TRACED, SpanKind.CLIENT)
    assert dict(span.attributes) == {
        "rpc.system": "grpc",
        "rpc.grpc.status_code": 0,
        "rpc.method": "Echo",
        "rpc.service": "trading.v1.TestService",
    }
    assert span.status.status_code is StatusCode.UNSET
    context = span.get_span_context()
    assert traceparent(recorder.metadata[0]) == (
        f"{context.trace_id:032x}",
        f"{context.span_id:016x}",
        True,
    )
    provider.shutdown()


async def test_a_failed_call_marks_its_span(server) -> None:
    _recorder, address = server
    spans, exporter, provider = traced(ALWAYS_ON)
    async with spans.instrument(grpc.aio.insecure_channel(address)) as channel:
        with pytest.raises(grpc.aio.AioRpcError):
            await channel.unary_unary(TRACED)(b"fail", metadata=(("x-caller", "test"),))
        (span,) = exporter.get_finished_spans()
    assert span.attributes["rpc.grpc.status_code"] == 9
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "not now"
    provider.shutdown()


async def test_unsampled_and_untraced_calls(server) -> None:
    recorder, address = server
    spans, exporter, provider = traced(ALWAYS_OFF)
    async with spans.instrument(grpc.aio.insecure_channel(address)) as channel:
        metadata: Any = (("x-caller", "test"),)
        assert await channel.unary_unary(TRACED)(b"a", metadata=metadata) == b"a"
        assert await channel.unary_unary(UNTRACED)(b"b") == b"b"
    assert exporter.get_finished_spans() == ()
    unsampled, untraced = recorder.metadata
    trace_id, _span_id, sampled = traceparent(unsampled)  # ids still propagate
    assert int(trace_id, 16) != 0 and not sampled
    assert unsampled["x-caller"] == "test"
    assert "traceparent" not in untraced
    provider.shutdown()
