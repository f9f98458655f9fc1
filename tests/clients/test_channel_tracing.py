"""The mesh channel's span: which endpoint served a sampled call, and its retries;
and what the span costs a call."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import grpc
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON
from opentelemetry.trace import StatusCode

import clients.channel
from clients.channel import _FailedCall, _rpc_error
from clients.mesh import Mesh
from clients.static import StaticEndpoints
from tests.clients.conftest import WHO, policy
from tests.clients.test_channel import mesh_channel


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    """A local provider the channel's tracer uses (nothing global is set)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ALWAYS_ON)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(clients.channel, "_TRACER", provider.get_tracer("clients.channel"))
    yield provider, exporter
    provider.shutdown()


def mesh_spans(exporter: InMemorySpanExporter) -> list[Any]:
    return [s for s in exporter.get_finished_spans() if s.name == "mesh tagged"]


async def test_a_sampled_call_shows_its_endpoint_and_retries(tagged_servers, spans) -> None:
    provider, exporter = spans
    down, up = await tagged_servers(2)
    down.behavior.fail_with = grpc.StatusCode.UNAVAILABLE
    tracer = provider.get_tracer(__name__)
    async with mesh_channel([down, up], balancer="round_robin") as channel:
        call = channel.unary_unary(WHO)
        for _ in range(2):  # round robin: one of the two starts on the failing endpoint
            with tracer.start_as_current_span("caller"):
                assert await call(b"") == b"s1"
    found = mesh_spans(exporter)
    assert len(found) == 2
    for span in found:
        assert span.attributes["trademesh.service"] == "tagged"
        assert span.attributes["trademesh.balancer"] == "round_robin"
        assert span.attributes["trademesh.endpoint"] == "tagged-1"  # the final attempt's
        assert span.status.status_code is StatusCode.UNSET
        assert span.parent is not None  # under the caller's span
    retried = [s for s in found if s.attributes["trademesh.attempts"] == 2]
    assert retried and all(s.attributes["trademesh.attempts"] in (1, 2) for s in found)
    for span in retried:
        (retry,) = span.events
        assert retry.name == "retry"
        assert retry.attributes["trademesh.code"] == "UNAVAILABLE"
        assert retry.attributes["trademesh.endpoint"] == "tagged-0"


async def test_a_failed_call_marks_its_span(tagged_servers, spans) -> None:
    provider, exporter = spans
    (down,) = await tagged_servers(1)
    down.behavior.fail_with = grpc.StatusCode.FAILED_PRECONDITION  # not retried
    async with mesh_channel([down]) as channel:
        caller = provider.get_tracer(__name__).start_as_current_span("caller")
        with caller, pytest.raises(grpc.aio.AioRpcError):
            await channel.unary_unary(WHO)(b"")
    (span,) = mesh_spans(exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description.startswith("FAILED_PRECONDITION")
    assert span.attributes["rpc.grpc.status_code"] == 9


async def test_unsampled_calls_make_no_span(tagged_servers, spans) -> None:
    _provider, exporter = spans
    (server,) = await tagged_servers(1)
    unsampled = TracerProvider(sampler=ALWAYS_OFF).get_tracer(__name__)
    async with mesh_channel([server]) as channel:
        call = channel.unary_unary(WHO)
        await call(b"")  # no span at all
        with unsampled.start_as_current_span("caller"):  # a span that does not record
            await call(b"")
    assert exporter.get_finished_spans() == ()


# -- what the span costs ---------------------------------------------------------


class _InstantChannel:
    """Answers every unary call at once, without a network: what is left is the
    mesh channel's own per-call work. Health: UNIMPLEMENTED (counts as serving)."""

    def unary_unary(self, _method: str, **_codec: Any) -> Any:
        async def call(_request: Any, **_kwargs: Any) -> bytes:
            return b""

        return call

    def unary_stream(self, _method: str, **_codec: Any) -> Any:
        return lambda *_a, **_k: _FailedCall(_rpc_error(grpc.StatusCode.UNIMPLEMENTED, ""))

    async def close(self) -> None:
        return None


class _Discard(InMemorySpanExporter):
    def export(self, spans: Sequence[Any]) -> Any:
        return super().export(())


@pytest.fixture
async def instant_call() -> AsyncIterator[Any]:
    source = StaticEndpoints("tagged", ["a:1", "b:2"])

    async def fixed(_service: str) -> StaticEndpoints:
        return source

    async with Mesh(fixed, channel_factory=lambda _a, _o: _InstantChannel()) as mesh:
        channel = await mesh.channel(policy(balancer="p2c"))
        yield channel.unary_unary(WHO)


async def test_the_span_costs_microseconds_and_nothing_when_unsampled(
    instant_call, monkeypatch
) -> None:
    provider = TracerProvider(sampler=ALWAYS_ON)
    provider.add_span_processor(BatchSpanProcessor(_Discard()))  # as in production
    monkeypatch.setattr(clients.channel, "_TRACER", provider.get_tracer("clients.channel"))
    tracer = provider.get_tracer(__name__)
    unsampled = TracerProvider(sampler=ALWAYS_OFF).get_tracer(__name__)
    calls = 5_000

    async def per_call() -> float:
        best = float("inf")
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(calls):
                await instant_call(b"")
            best = min(best, (time.perf_counter() - started) / calls)
        return best * 1e6

    bare = await per_call()
    with unsampled.start_as_current_span("caller"):
        not_sampled = await per_call()
    with tracer.start_as_current_span("caller"):
        sampled = await per_call()
    provider.shutdown()
    print(
        f"mesh channel per call: {bare:.2f} µs without a span, {not_sampled:.2f} µs "
        f"unsampled, {sampled:.2f} µs sampled (+{sampled - bare:.2f} µs for the span)"
    )
    assert not_sampled < bare * 1.5 + 2  # one context read; generous for noisy machines
    assert sampled - bare < 100
