"""A server interceptor that wraps each method's handler once and caches it.

grpc.aio interceptors run on every call; wrapping the behaviour once per method
leaves one dict lookup and one extra frame per call. Subclasses say how to wrap a
behaviour that returns one response and one that yields many.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

Behavior = Callable[..., Any]
Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]]


class WrappingInterceptor(grpc.aio.ServerInterceptor):
    """Caches one wrapped handler per method, so every interceptor after it in the
    chain sees only the first call of each method: keep these innermost."""

    def __init__(self) -> None:
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}

    def wrap_unary_response(self, behavior: Behavior, method: str) -> Behavior:
        raise NotImplementedError

    def wrap_stream_response(self, behavior: Behavior, method: str) -> Behavior:
        """For async-generator behaviours; a streaming handler that writes with
        context.write() and returns is wrapped like a unary one."""
        raise NotImplementedError

    def _wrap_stream(self, behavior: Behavior, method: str) -> Behavior:
        if inspect.isasyncgenfunction(behavior):
            return self.wrap_stream_response(behavior, method)
        return self.wrap_unary_response(behavior, method)

    def wrap_handler(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        codec = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                self.wrap_unary_response(handler.unary_unary, method), **codec
            )
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                self.wrap_unary_response(handler.stream_unary, method), **codec
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_stream(handler.unary_stream, method), **codec
            )
        return grpc.stream_stream_rpc_method_handler(
            self._wrap_stream(handler.stream_stream, method), **codec
        )

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
            wrapped = self._wrapped[method] = self.wrap_handler(handler, method)
        return wrapped
