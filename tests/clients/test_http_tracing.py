"""The REST client's spans: the stock OpenTelemetry aiohttp hooks where a span may
record, only the traceparent header under an unsampled parent."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from clients.http_pool import lean_trace_config


@pytest.fixture
async def echo_headers() -> AsyncIterator[str]:
    """A loopback server answering each request with the traceparent it received."""

    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"traceparent": request.headers.get("traceparent")})

    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        await runner.cleanup()


@pytest.fixture
def spans() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ALWAYS_ON)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def sampled(traceparent: str) -> bool:
    return bool(int(traceparent.rsplit("-", 1)[1], 16) & 1)  # W3C: bit 0 of the flags


async def get_traceparent(url: str, provider: TracerProvider) -> str:
    config = lean_trace_config(tracer_provider=provider)
    async with aiohttp.ClientSession(trace_configs=[config]) as session, session.get(url) as reply:
        return str((await reply.json())["traceparent"])


async def test_an_unsampled_parent_sends_its_context_and_makes_no_span(
    echo_headers: str, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans
    parent = SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=TraceFlags(0))
    with trace.use_span(NonRecordingSpan(parent)):
        sent = await get_traceparent(echo_headers, provider)
    assert sent == f"00-{0xABC:032x}-{0xDEF:016x}-00"
    assert exporter.get_finished_spans() == ()


async def test_a_sampled_parent_gets_the_stock_client_span(
    echo_headers: str, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans
    with provider.get_tracer(__name__).start_as_current_span("caller") as caller:
        sent = await get_traceparent(echo_headers, provider)
    client = next(s for s in exporter.get_finished_spans() if s.kind is SpanKind.CLIENT)
    assert client.name == "GET"
    assert client.parent is not None
    assert client.parent.span_id == caller.get_span_context().span_id
    context = client.get_span_context()
    assert sent.startswith(f"00-{context.trace_id:032x}-{context.span_id:016x}-")
    assert sampled(sent)
    attributes = dict(client.attributes or {})
    assert attributes.get("http.response.status_code", attributes.get("http.status_code")) == 200


async def test_a_root_request_is_left_to_the_sampler(
    echo_headers: str, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans
    sent = await get_traceparent(echo_headers, provider)
    [client] = exporter.get_finished_spans()
    assert client.kind is SpanKind.CLIENT
    assert sampled(sent)
