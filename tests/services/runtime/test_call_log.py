"""One log line per failed call, none per successful one."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import grpc
import pytest

from services.errors import FieldViolation, InvalidArgument, Unavailable
from services.runtime.server import ServiceBinding, serving

LOGGER = "services.runtime.interceptors.call_log"


async def unary(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    if request == b"invalid":
        raise InvalidArgument([FieldViolation("quantity", "must be positive")])
    if request == b"down":
        raise Unavailable("risk service unreachable")
    if request == b"set-code":
        context.set_code(grpc.StatusCode.NOT_FOUND)
        context.set_details("no such order")
    return request


async def stream(request: bytes, _context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    yield b"one"
    raise Unavailable("draining: resubscribe")


def binding() -> ServiceBinding:
    handler = grpc.method_handlers_generic_handler(
        "test.Calls",
        {
            "Unary": grpc.unary_unary_rpc_method_handler(unary),
            "Stream": grpc.unary_stream_rpc_method_handler(stream),
        },
    )
    return ServiceBinding("test.Calls", handler, lambda h, s: s.add_generic_rpc_handlers((h,)))


@pytest.fixture
async def channel() -> AsyncIterator[grpc.aio.Channel]:
    async with serving([binding()]) as address, grpc.aio.insecure_channel(address) as ch:
        yield ch


def failed_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER]


async def test_successful_calls_log_nothing(channel, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    for _ in range(5):
        assert await channel.unary_unary("/test.Calls/Unary")(b"ok") == b"ok"
    assert failed_lines(caplog) == []


@pytest.mark.parametrize(
    ("request_", "code", "level"),
    [
        (b"invalid", "INVALID_ARGUMENT", logging.INFO),  # the caller's problem
        (b"down", "UNAVAILABLE", logging.WARNING),  # the mesh's
        (b"set-code", "NOT_FOUND", logging.INFO),  # set_code() without raising
    ],
)
async def test_a_failed_call_logs_one_line(channel, caplog, request_, code, level) -> None:
    caplog.set_level(logging.INFO)
    with pytest.raises(grpc.aio.AioRpcError):
        await channel.unary_unary("/test.Calls/Unary")(request_)
    (line,) = failed_lines(caplog)
    assert (line.method, line.code, line.levelno) == ("/test.Calls/Unary", code, level)
    assert line.details and line.duration_ms >= 0
    assert code in line.getMessage() and "/test.Calls/Unary" in line.getMessage()


async def test_a_stream_ending_in_an_error_logs_one_line(channel, caplog) -> None:
    caplog.set_level(logging.INFO)
    call = channel.unary_stream("/test.Calls/Stream")(b"")
    with pytest.raises(grpc.aio.AioRpcError):
        async for _ in call:
            pass
    (line,) = failed_lines(caplog)
    assert (line.code, line.details) == ("UNAVAILABLE", "draining: resubscribe")
