"""Turns what a servicer raises into a proper gRPC status, never a stack trace.

DomainError -> its status code, message and details. Anything else is a bug: it
is logged with its traceback under a short reference, and the client gets
INTERNAL with that reference only.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc

from services.errors import DomainError
from services.runtime.interceptors.wrapping import Behavior, WrappingInterceptor
from services.runtime.status import to_grpc_status

_LOGGER = logging.getLogger(__name__)


async def abort_with_status(context: grpc.aio.ServicerContext, method: str, exc: Exception) -> None:
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


def passes_through(exc: BaseException) -> bool:
    """True for what must propagate as it is: aborts, cancellation, and anything
    that is not an Exception (GeneratorExit, KeyboardInterrupt)."""
    return isinstance(exc, _PASS_THROUGH) or not isinstance(exc, Exception)


class DomainErrorInterceptor(WrappingInterceptor):
    """Maps what a servicer raises onto the call's status."""

    def wrap_unary_response(self, behavior: Behavior, method: str) -> Behavior:
        async def call(request_or_iterator: Any, context: grpc.aio.ServicerContext) -> Any:
            try:
                return await behavior(request_or_iterator, context)
            except _PASS_THROUGH:
                raise
            except Exception as exc:
                await abort_with_status(context, method, exc)

        return call

    def wrap_stream_response(self, behavior: Behavior, method: str) -> Behavior:
        async def stream(
            request_or_iterator: Any, context: grpc.aio.ServicerContext
        ) -> AsyncIterator[Any]:
            try:
                async for response in behavior(request_or_iterator, context):
                    yield response
            except _PASS_THROUGH:
                raise
            except Exception as exc:
                await abort_with_status(context, method, exc)

        return stream
