"""One log line per failed call: method, status code, details, duration, and (in
JSON logs) the trace id, so a client's error leads to the server's story.

Successful calls log nothing: at thousands of calls a second a line each would
cost more than the calls (the metrics count them). The level says whose problem
it is: INFO for the caller's (a bad request, a refused order, a hang-up), WARNING
for the mesh's (unavailable, overloaded, too slow), ERROR for a bug here.

Hot path: a successful call pays one clock read and one status read.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc

from services.runtime.interceptors.wrapping import Behavior, WrappingInterceptor

_LOGGER = logging.getLogger(__name__)
_perf_counter = time.perf_counter
_OK = grpc.StatusCode.OK

_CODE = grpc.StatusCode
_LEVELS = {
    _CODE.CANCELLED: logging.INFO,
    _CODE.INVALID_ARGUMENT: logging.INFO,
    _CODE.NOT_FOUND: logging.INFO,
    _CODE.ALREADY_EXISTS: logging.INFO,
    _CODE.FAILED_PRECONDITION: logging.INFO,
    _CODE.OUT_OF_RANGE: logging.INFO,
    _CODE.PERMISSION_DENIED: logging.WARNING,
    _CODE.UNAUTHENTICATED: logging.WARNING,
    _CODE.RESOURCE_EXHAUSTED: logging.WARNING,
    _CODE.DEADLINE_EXCEEDED: logging.WARNING,
    _CODE.UNAVAILABLE: logging.WARNING,
    _CODE.ABORTED: logging.WARNING,
    _CODE.UNIMPLEMENTED: logging.WARNING,
}  # anything else (INTERNAL, UNKNOWN, DATA_LOSS): ERROR


def _code_of(exc: BaseException | None, context: grpc.aio.ServicerContext) -> grpc.StatusCode:
    if isinstance(exc, asyncio.CancelledError | GeneratorExit):
        # grpc.aio cancels the handler when the deadline passes too.
        left = context.time_remaining()
        return _CODE.DEADLINE_EXCEEDED if left is not None and left <= 0 else _CODE.CANCELLED
    return context.code() or (_CODE.UNKNOWN if exc is not None else _OK)


def log_failure(
    method: str,
    context: grpc.aio.ServicerContext,
    started: float,
    exc: BaseException | None = None,
) -> None:
    code = _code_of(exc, context)
    if code is _OK:
        return
    details = context.details() or ""
    if isinstance(details, bytes):
        details = details.decode(errors="replace")
    millis = round((_perf_counter() - started) * 1000, 3)
    _LOGGER.log(
        _LEVELS.get(code, logging.ERROR),
        "%s failed: %s (%.1f ms) %s",
        method,
        code.name,
        millis,
        details,
        extra={"method": method, "code": code.name, "details": details, "duration_ms": millis},
    )


class FailedCallLogInterceptor(WrappingInterceptor):
    """Logs each call that ends with a status other than OK, once."""

    def wrap_unary_response(self, behavior: Behavior, method: str) -> Behavior:
        async def call(request_or_iterator: Any, context: grpc.aio.ServicerContext) -> Any:
            started = _perf_counter()
            try:
                response = await behavior(request_or_iterator, context)
            except BaseException as exc:
                log_failure(method, context, started, exc)
                raise
            if context.code() is not None:  # set_code() without raising
                log_failure(method, context, started)
            return response

        return call

    def wrap_stream_response(self, behavior: Behavior, method: str) -> Behavior:
        async def stream(
            request_or_iterator: Any, context: grpc.aio.ServicerContext
        ) -> AsyncIterator[Any]:
            started = _perf_counter()
            try:
                async for response in behavior(request_or_iterator, context):
                    yield response
            except BaseException as exc:
                log_failure(method, context, started, exc)
                raise
            if context.code() is not None:
                log_failure(method, context, started)

        return stream
