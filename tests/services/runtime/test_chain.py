"""The folded interceptor chain gives every call the outcome the five chained
interceptors gave it: the client's status, the metrics and the log lines."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from prometheus_client import CollectorRegistry

from services.errors import NotFound
from services.runtime.interceptors.call_log import FailedCallLogInterceptor
from services.runtime.interceptors.chain import ChainInterceptor
from services.runtime.interceptors.deadline import DeadlineInterceptor
from services.runtime.interceptors.domain_errors import DomainErrorInterceptor
from services.runtime.interceptors.metrics import MetricsInterceptor
from services.runtime.telemetry.metrics import RpcMetrics

SERVICE = "test.Chain"


async def unary(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    if request == b"missing":
        raise NotFound("no such order")
    if request == b"bug":
        raise RuntimeError("a bug")
    if request == b"set-code":
        context.set_code(grpc.StatusCode.FAILED_PRECONDITION)
        context.set_details("not now")
    if request == b"abort":
        await context.abort(grpc.StatusCode.ALREADY_EXISTS, "taken")
    if request == b"slow":
        await asyncio.sleep(5)
    return request


async def stream(request: bytes, _context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    yield b"first"
    if request == b"missing":
        raise NotFound("gone")
    yield b"second"


def handlers() -> grpc.GenericRpcHandler:
    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Unary": grpc.unary_unary_rpc_method_handler(unary),
            "Stream": grpc.unary_stream_rpc_method_handler(stream),
        },
    )


async def outcomes(interceptors: list[Any]) -> dict[str, Any]:
    server = grpc.aio.server(interceptors=interceptors)
    server.add_generic_rpc_handlers((handlers(),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    seen: dict[str, Any] = {}
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            for request in (b"ok", b"missing", b"bug", b"set-code", b"abort", b"slow"):
                timeout = 0.2 if request == b"slow" else 10.0
                try:
                    answer = await channel.unary_unary(f"/{SERVICE}/Unary")(
                        request, timeout=timeout
                    )
                    seen[request.decode()] = ("OK", answer)
                except grpc.aio.AioRpcError as err:
                    details = re.sub(r"reference \w+", "reference <ref>", err.details() or "")
                    seen[request.decode()] = (err.code().name, details)
            for request in (b"ok", b"missing"):
                got: list[bytes] = []
                try:
                    async for item in channel.unary_stream(f"/{SERVICE}/Stream")(request):
                        got.append(item)
                    seen[f"stream {request.decode()}"] = ("OK", got)
                except grpc.aio.AioRpcError as err:
                    seen[f"stream {request.decode()}"] = (err.code().name, got, err.details())
            await asyncio.sleep(0.1)  # the slow call's handler ends on the server
    finally:
        await server.stop(0)
    return seen


def counts(registry: CollectorRegistry) -> dict[tuple[str, ...], float]:
    return {
        (s.name, *sorted(s.labels.items())): s.value  # type: ignore[misc]
        for family in registry.collect()
        for s in family.samples
        if s.name.endswith(("_total", "_count", "_active_requests"))
    }


def log_lines(caplog: pytest.LogCaptureFixture) -> list[tuple[str, int, str]]:
    return sorted(
        (r.name, r.levelno, getattr(r, "code", "")) for r in caplog.records if r.name != "asyncio"
    )


async def test_the_folded_chain_gives_the_chained_outcomes(caplog) -> None:
    caplog.set_level(logging.INFO)
    chained_registry, folded_registry = CollectorRegistry(), CollectorRegistry()
    chained_metrics, folded_metrics = RpcMetrics(chained_registry), RpcMetrics(folded_registry)
    chained = await outcomes(
        [
            MetricsInterceptor(chained_metrics),
            DeadlineInterceptor(),
            FailedCallLogInterceptor(),
            DomainErrorInterceptor(),
        ]
    )
    chained_logs = log_lines(caplog)
    caplog.clear()
    folded = await outcomes([ChainInterceptor(folded_metrics)])

    assert folded == chained
    assert folded["missing"] == ("NOT_FOUND", "no such order")
    assert folded["bug"][0] == "INTERNAL" and folded["slow"][0] == "DEADLINE_EXCEEDED"
    assert counts(folded_registry) == counts(chained_registry)
    assert counts(folded_registry)[
        ("rpc_server_requests_total", ("rpc_grpc_status_code", "13"), ("rpc_method", "Unary"),
         ("rpc_service", SERVICE))
    ] == 1  # fmt: skip
    assert log_lines(caplog) == chained_logs
    assert ("services.runtime.interceptors.call_log", logging.INFO, "NOT_FOUND") in chained_logs
