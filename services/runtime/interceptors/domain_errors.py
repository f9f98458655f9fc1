"""Turns what a servicer raises into a proper gRPC status, never a stack trace.

DomainError -> its status code, message and details. Anything else is a bug: it
is logged with its traceback under a short reference, and the client gets
INTERNAL with that reference only.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from services.errors import DomainError
from services.runtime.status import to_grpc_status

_LOGGER = logging.getLogger(__name__)

Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]]


async def _abort(context: grpc.aio.ServicerContext, method: str, exc: Exception) -> None:
    if isinstance(exc, DomainError):
        status = to_grpc_status(exc)
        await context.abort(status.code, status.details, status.trailing_metadata)
    reference = uuid.uuid4().hex[:12]
    _LOGGER.error("unexpected error in %s (reference %s)", method, reference, exc_info=exc)
    await context.abort(
        grpc.StatusCode.INTERNAL,
        f"internal error in {method}; the server logged it under reference {reference}",
    )


# Errors that must pass through: aborts already carry their status, and
# cancellation is how grpc.aio ends a call whose client went away.
_PASS_THROUGH = (grpc.aio.AbortError, asyncio.CancelledError)


def _wrap_unary_response(behavior: Callable[..., Any], method: str) -> Callable[..., Any]:
    async def call(request_or_iterator: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await behavior(request_or_iterator, context)
        except _PASS_THROUGH:
            raise
        except Exception as exc:
            await _abort(context, method, exc)

    return call


def _wrap_stream_response(behavior: Callable[..., Any], method: str) -> Callable[..., Any]:
    if not inspect.isasyncgenfunction(behavior):
        # A streaming handler that writes with context.write() and returns.
        return _wrap_unary_response(behavior, method)

    async def stream(request_or_iterator: Any, context: grpc.aio.ServicerContext) -> AsyncIterator:
        try:
            async for response in behavior(request_or_iterator, context):
                yield response
        except _PASS_THROUGH:
            raise
        except Exception as exc:
            await _abort(context, method, exc)

    return stream


def wrap_handler(handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
    """The same handler with its behavior wrapped in error mapping."""
    codec = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(
            _wrap_unary_response(handler.unary_unary, method), **codec
        )
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(
            _wrap_unary_response(handler.stream_unary, method), **codec
        )
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(
            _wrap_stream_response(handler.unary_stream, method), **codec
        )
    return grpc.stream_stream_rpc_method_handler(
        _wrap_stream_response(handler.stream_stream, method), **codec
    )


class DomainErrorInterceptor(grpc.aio.ServerInterceptor):
    """Innermost interceptor of the chain: it caches one wrapped handler per
    method, so it must see the final handler lookup, not another interceptor."""

    def __init__(self) -> None:
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:
        # Hot path: one dict lookup per call after the first call of a method.
        method: str = handler_call_details.method  # type: ignore[attr-defined]
        wrapped = self._wrapped.get(method)
        if wrapped is None:
            handler = await continuation(handler_call_details)
            if handler is None:
                return None
            wrapped = self._wrapped[method] = wrap_handler(handler, method)
        return wrapped
