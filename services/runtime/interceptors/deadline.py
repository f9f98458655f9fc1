"""Carries each incoming call's deadline to the calls made while serving it.

The mesh channel reads SERVING_DEADLINE and never gives a downstream call more
time than the caller has left, so a hop whose answer nobody waits for is not
started (grpc-go does this through its context; Python needs a context var).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import grpc

from clients.resilience.deadline import SERVING_DEADLINE
from services.runtime.interceptors.wrapping import Behavior, WrappingInterceptor


def set_serving_deadline(context: grpc.aio.ServicerContext) -> None:
    left = context.time_remaining()
    # grpc.aio serves each call in its own task: the value stays with this call.
    SERVING_DEADLINE.set(None if left is None else time.monotonic() + left)


class DeadlineInterceptor(WrappingInterceptor):
    def wrap_unary_response(self, behavior: Behavior, method: str) -> Behavior:
        async def call(request_or_iterator: Any, context: grpc.aio.ServicerContext) -> Any:
            set_serving_deadline(context)
            return await behavior(request_or_iterator, context)

        return call

    def wrap_stream_response(self, behavior: Behavior, method: str) -> Behavior:
        async def stream(
            request_or_iterator: Any, context: grpc.aio.ServicerContext
        ) -> AsyncIterator[Any]:
            set_serving_deadline(context)
            async for response in behavior(request_or_iterator, context):
                yield response

        return stream
