"""Errors raised by servicers reach clients as proper statuses, never tracebacks."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from services.errors import FailedPrecondition, FieldViolation, InvalidArgument, NotFound
from services.runtime.server import ServiceBinding, serving


async def unary(request: bytes, _context: grpc.aio.ServicerContext) -> bytes:
    if request == b"invalid":
        raise InvalidArgument(
            [FieldViolation("quantity", "must be positive"), FieldViolation("side", "is required")]
        )
    if request == b"precondition":
        raise FailedPrecondition("buying power: needs 10 but 5 is available")
    if request == b"bug":
        raise KeyError("secret internal detail")
    return request


async def stream(request: bytes, _context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    yield b"first"
    raise NotFound(f"{request.decode()} vanished")


async def bidi(requests: AsyncIterator[bytes], _context: grpc.aio.ServicerContext):
    async for request in requests:
        if request == b"bug":
            raise ZeroDivisionError("secret")
        yield request


def binding() -> ServiceBinding:
    handler = grpc.method_handlers_generic_handler(
        "test.Errors",
        {
            "Unary": grpc.unary_unary_rpc_method_handler(unary),
            "Stream": grpc.unary_stream_rpc_method_handler(stream),
            "Bidi": grpc.stream_stream_rpc_method_handler(bidi),
        },
    )
    return ServiceBinding("test.Errors", handler, lambda h, s: s.add_generic_rpc_handlers((h,)))


@pytest.fixture
async def channel() -> AsyncIterator[grpc.aio.Channel]:
    async with serving([binding()]) as address, grpc.aio.insecure_channel(address) as ch:
        yield ch


async def test_invalid_argument_carries_field_violations(channel: grpc.aio.Channel) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await channel.unary_unary("/test.Errors/Unary")(b"invalid")
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "quantity: must be positive" in caught.value.details()
    status = rpc_status.from_call(caught.value)
    assert status is not None
    bad_request = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad_request)
    assert [(v.field, v.description) for v in bad_request.field_violations] == [
        ("quantity", "must be positive"),
        ("side", "is required"),
    ]


async def test_domain_error_keeps_its_code_and_message(channel: grpc.aio.Channel) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await channel.unary_unary("/test.Errors/Unary")(b"precondition")
    assert caught.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert caught.value.details() == "buying power: needs 10 but 5 is available"


async def test_unexpected_error_is_internal_without_details(
    channel: grpc.aio.Channel, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await channel.unary_unary("/test.Errors/Unary")(b"bug")
    assert caught.value.code() is grpc.StatusCode.INTERNAL
    details = caught.value.details()
    assert "secret internal detail" not in details and "Traceback" not in details
    reference = details.rsplit(" ", 1)[-1]
    logged = [r for r in caplog.records if reference in r.getMessage()]
    assert logged and logged[0].exc_info is not None, "the bug must be logged with its traceback"


async def test_server_stream_error_after_messages(channel: grpc.aio.Channel) -> None:
    call = channel.unary_stream("/test.Errors/Stream")(b"book")
    received = []
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for message in call:
            received.append(message)
    assert received == [b"first"]
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND
    assert caught.value.details() == "book vanished"


async def test_bidi_stream_bug_is_internal(channel: grpc.aio.Channel) -> None:
    call = channel.stream_stream("/test.Errors/Bidi")()
    await call.write(b"one")
    assert await call.read() == b"one"
    await call.write(b"bug")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call.read()
    assert caught.value.code() is grpc.StatusCode.INTERNAL
    assert "secret" not in caught.value.details()


async def test_unknown_method_is_unimplemented(channel: grpc.aio.Channel) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await channel.unary_unary("/test.Errors/Nope")(b"")
    assert caught.value.code() is grpc.StatusCode.UNIMPLEMENTED
