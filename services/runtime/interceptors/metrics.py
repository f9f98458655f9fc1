"""Per-method RED metrics of the server: calls by final status, duration, in flight.

Hot path: the labelled children of a method are resolved when it is first wrapped
(WrappingInterceptor), so a call pays a gauge inc/dec, two clock reads, one
histogram observe and one counter inc (a dict lookup by status code): about 2 µs
(tests/services/runtime/test_metrics.py measures it).

Keep it first in the chain: a call refused by authorization or failed by a domain
error is counted with the status the client sees.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc

from services.runtime.interceptors.wrapping import Behavior, WrappingInterceptor
from services.runtime.telemetry.metrics import RpcMetrics

_perf_counter = time.perf_counter
_OK = grpc.StatusCode.OK


def final_code(exc: BaseException, context: grpc.aio.ServicerContext) -> grpc.StatusCode:
    """The status a call that raised `exc` ends with."""
    if isinstance(exc, asyncio.CancelledError | GeneratorExit):
        # grpc.aio cancels the handler when the deadline passes as well as when the
        # client goes away; the client sees DEADLINE_EXCEEDED in the first case.
        left = context.time_remaining()
        expired = left is not None and left <= 0
        return grpc.StatusCode.DEADLINE_EXCEEDED if expired else grpc.StatusCode.CANCELLED
    # abort() (AbortError) sets the code; anything else unhandled is UNKNOWN.
    return context.code() or grpc.StatusCode.UNKNOWN


class MetricsInterceptor(WrappingInterceptor):
    def __init__(self, metrics: RpcMetrics) -> None:
        super().__init__()
        self.metrics = metrics

    def wrap_unary_response(self, behavior: Behavior, method: str) -> Behavior:
        m = self.metrics.for_method(method)
        active_inc, active_dec = m.active.inc, m.active.dec
        observe, requests = m.duration.observe, m.requests

        async def call(request_or_iterator: Any, context: grpc.aio.ServicerContext) -> Any:
            active_inc()
            started = _perf_counter()
            try:
                response = await behavior(request_or_iterator, context)
            except BaseException as exc:
                requests(final_code(exc, context)).inc()
                raise
            finally:
                observe(_perf_counter() - started)
                active_dec()
            requests(context.code() or _OK).inc()  # set_code() without raising counts too
            return response

        return call

    def wrap_stream_response(self, behavior: Behavior, method: str) -> Behavior:
        m = self.metrics.for_method(method)
        active_inc, active_dec = m.active.inc, m.active.dec
        observe, requests = m.duration.observe, m.requests

        async def stream(
            request_or_iterator: Any, context: grpc.aio.ServicerContext
        ) -> AsyncIterator[Any]:
            active_inc()
            started = _perf_counter()
            try:
                async for response in behavior(request_or_iterator, context):
                    yield response
            except BaseException as exc:
                requests(final_code(exc, context)).inc()
                raise
            finally:
                observe(_perf_counter() - started)
                active_dec()
            requests(context.code() or _OK).inc()

        return stream
