"""MeshChannel: what generated stubs take as their channel, with the mesh inside.

`RiskServiceStub(mesh_channel)` works unchanged. Each unary call picks an endpoint
by the service's policy, carries a deadline (the method default, shortened to
what is left of the call being served), and is retried on another endpoint when
it failed before doing any work, within a retry budget and behind adaptive
client-side throttling. Streaming calls pick an endpoint and then belong to it:
they are not retried (a half-consumed stream cannot be replayed safely).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import trace

from clients.endpoint_pool import EndpointPool, Member
from clients.policy import ENDPOINT_FAILURES, RETRYABLE
from clients.resilience.breaker import AdaptiveThrottle
from clients.resilience.deadline import SERVING_DEADLINE
from clients.resilience.retry_budget import RetryBudget

Metadata = Sequence[tuple[str, str | bytes]] | None

_monotonic = time.monotonic
# Seconds before retrying a keyed call (x attempt): long enough for a dead owner's
# health stream to break and the ring to move its keys, short against a 2 s deadline.
_KEYED_RETRY_PAUSE = 0.05
# grpc-core's words for a request that never left this process.
_NEVER_SENT = ("failed to connect", "Connection refused", "connections to all backends failing")
# A call's options when it gives none (never mutated).
_NO_OPTIONS: dict[str, Any] = {}

# Tracing (services/runtime/telemetry/tracing.py sets the provider): a sampled call
# gets a "mesh <service>" span around its attempts, each attempt's client span
# (opentelemetry-instrumentation-grpc) beneath it.
_TRACER = trace.get_tracer(__name__)
_current_span = trace.get_current_span


def _rpc_error(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


class MeshChannel:
    """A grpc.aio.Channel look-alike over the endpoints of one service."""

    def __init__(self, pool: EndpointPool) -> None:
        policy = pool.policy
        self.policy = policy
        self.pool = pool
        self.service = policy.service
        self.budget = RetryBudget(
            ratio=policy.retry_ratio, min_per_second=policy.retry_min_per_second
        )
        self.throttle = AdaptiveThrottle() if policy.throttle else None
        self.retries = 0  # retries sent, for metrics and tests
        self.throttled = 0  # calls refused by the throttle

    # -- what generated stubs call ---------------------------------------------

    def unary_unary(
        self,
        method: str,
        request_serializer: Callable[[Any], bytes] | None = None,
        response_deserializer: Callable[[bytes], Any] | None = None,
        _registered_method: bool = False,
    ) -> _UnaryUnary:
        return _UnaryUnary(self, method, request_serializer, response_deserializer)

    def unary_stream(
        self,
        method: str,
        request_serializer: Callable[[Any], bytes] | None = None,
        response_deserializer: Callable[[bytes], Any] | None = None,
        _registered_method: bool = False,
    ) -> _Streaming:
        return _Streaming(self, "unary_stream", method, request_serializer, response_deserializer)

    def stream_unary(
        self,
        method: str,
        request_serializer: Callable[[Any], bytes] | None = None,
        response_deserializer: Callable[[bytes], Any] | None = None,
        _registered_method: bool = False,
    ) -> _Streaming:
        return _Streaming(self, "stream_unary", method, request_serializer, response_deserializer)

    def stream_stream(
        self,
        method: str,
        request_serializer: Callable[[Any], bytes] | None = None,
        response_deserializer: Callable[[bytes], Any] | None = None,
        _registered_method: bool = False,
    ) -> _Streaming:
        return _Streaming(self, "stream_stream", method, request_serializer, response_deserializer)

    async def close(self) -> None:
        await self.pool.close()

    async def __aenter__(self) -> MeshChannel:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- the unary path (hot) ---------------------------------------------------

    def _no_endpoint(self) -> grpc.aio.AioRpcError:
        return _rpc_error(
            grpc.StatusCode.UNAVAILABLE,
            f"no endpoint of {self.service} is registered; is the service running?",
        )

    async def _unary(
        self,
        call: _UnaryUnary,
        request: Any,
        timeout_seconds: float | None,
        options: dict[str, Any],
    ) -> Any:
        policy, pool, throttle = self.policy, self.pool, self.throttle
        # The method's default deadline, or the caller's, cut to what is left of the
        # call being served.
        deadline = _monotonic() + (
            policy.timeouts[call.method] if timeout_seconds is None else timeout_seconds
        )
        inherited = SERVING_DEADLINE.get()
        if inherited is not None and inherited < deadline:
            deadline = inherited
        key = policy.key_of(request) if policy.key_of is not None else None
        keyed = key is not None and policy.balancer == "ring_hash"
        self.budget.record_request()
        attempt, sent, avoid, member = 1, 0, None, None
        # One context read decides: an unsampled call allocates nothing for tracing.
        span = _current_span()
        token = None
        if span.is_recording():
            span, token = self._open_span(call.method, key)
        try:
            while True:
                left = deadline - _monotonic()
                if left <= 0:
                    raise _rpc_error(
                        grpc.StatusCode.DEADLINE_EXCEEDED,
                        f"deadline exceeded before {call.method} could be sent to {self.service}",
                    )
                if throttle is not None and not throttle.allow():
                    self.throttled += 1
                    raise _rpc_error(
                        grpc.StatusCode.UNAVAILABLE,
                        f"{self.service} has been failing; this client throttles calls to it "
                        "(adaptive throttling) until it recovers",
                    )
                member = pool.pick(key, avoid)
                if member is None:
                    raise self._no_endpoint()
                stats = member.stats
                started = stats.on_start()
                sent += 1
                try:
                    response = await call.on(member)(request, timeout=left, **options)
                except grpc.aio.AioRpcError as err:
                    code = err.code()
                    healthy = code not in ENDPOINT_FAILURES
                    stats.on_finish(started, healthy)
                    pool.record(member, healthy)
                    if throttle is not None:
                        throttle.record(healthy)
                    if (
                        code in RETRYABLE
                        and attempt < policy.max_attempts
                        and (policy.idempotent or _never_sent(err))
                        and self.budget.try_acquire_retry()
                    ):
                        if token is not None:
                            _note_retry(span, member, err)
                        attempt += 1
                        self.retries += 1
                        if keyed:
                            # The key's owner holds its state: ask the ring again once
                            # the health watch has had a moment to drop a dead owner,
                            # rather than spraying the key over other instances.
                            await asyncio.sleep(_KEYED_RETRY_PAUSE * attempt)
                        else:
                            avoid = member.endpoint.instance_id
                        continue
                    raise
                except BaseException:  # cancelled by the caller: not the endpoint's fault
                    stats.on_finish(started, True)
                    raise
                stats.on_finish(started, True)
                pool.record(member, True)
                if throttle is not None:
                    throttle.record(True)
                return response
        except grpc.aio.AioRpcError as err:
            if token is not None:
                _note_failure(span, err)
            raise
        finally:
            if token is not None:
                _close_span(span, token, sent, member)

    def _open_span(self, method: str, key: str | None) -> tuple[trace.Span, object]:
        """The mesh's span for one sampled call, made current so that each
        attempt's client span is its child."""
        attributes = {
            "trademesh.service": self.service,
            "trademesh.balancer": self.policy.balancer,
            "rpc.method": method,
        }
        if key is not None:
            attributes["trademesh.key"] = key
        span = _TRACER.start_span(f"mesh {self.service}", attributes=attributes)
        return span, otel_context.attach(trace.set_span_in_context(span))


def _note_retry(span: trace.Span, member: Member, err: grpc.aio.AioRpcError) -> None:
    span.add_event(
        "retry",
        {
            "rpc.grpc.status_code": err.code().value[0],
            "trademesh.code": err.code().name,
            "trademesh.endpoint": member.endpoint.instance_id,
            "trademesh.address": member.endpoint.address,
        },
    )


def _note_failure(span: trace.Span, err: grpc.aio.AioRpcError) -> None:
    span.set_attribute("rpc.grpc.status_code", err.code().value[0])
    span.set_status(trace.StatusCode.ERROR, f"{err.code().name}: {err.details() or ''}")


def _close_span(span: trace.Span, token: object, sent: int, member: Member | None) -> None:
    otel_context.detach(token)  # type: ignore[arg-type]
    span.set_attribute("trademesh.attempts", sent)  # attempts that reached an endpoint
    if member is not None:  # the final attempt's endpoint
        span.set_attribute("trademesh.endpoint", member.endpoint.instance_id)
        span.set_attribute("trademesh.address", member.endpoint.address)
    span.end()


def _never_sent(err: grpc.aio.AioRpcError) -> bool:
    details = err.details() or ""
    return any(words in details for words in _NEVER_SENT)


class _UnaryUnary:
    __slots__ = ("_channel", "_deserializer", "_serializer", "method")

    def __init__(
        self,
        channel: MeshChannel,
        method: str,
        serializer: Callable[[Any], bytes] | None,
        deserializer: Callable[[bytes], Any] | None,
    ) -> None:
        self._channel = channel
        self.method = method
        self._serializer = serializer
        self._deserializer = deserializer

    def on(self, member: Member) -> Any:
        """This method's multicallable on one endpoint's channel (made once)."""
        found = member.calls.get(self.method)
        if found is None:
            found = member.calls[self.method] = member.channel.unary_unary(
                self.method,
                request_serializer=self._serializer,
                response_deserializer=self._deserializer,
                _registered_method=True,
            )
        return found

    def __call__(
        self,
        request: Any,
        *,
        timeout: float | None = None,
        metadata: Metadata = None,
        credentials: grpc.CallCredentials | None = None,
        wait_for_ready: bool | None = None,
        compression: grpc.Compression | None = None,
    ) -> Any:
        if metadata is None and credentials is None and wait_for_ready is compression is None:
            return self._channel._unary(self, request, timeout, _NO_OPTIONS)  # no dict to build
        options = {
            "metadata": metadata,
            "credentials": credentials,
            "wait_for_ready": wait_for_ready,
            "compression": compression,
        }
        return self._channel._unary(self, request, timeout, options)


class _Streaming:
    """Streaming multicallables: one endpoint per call, no retries."""

    __slots__ = ("_channel", "_deserializer", "_kind", "_serializer", "method")

    def __init__(
        self,
        channel: MeshChannel,
        kind: str,
        method: str,
        serializer: Callable[[Any], bytes] | None,
        deserializer: Callable[[bytes], Any] | None,
    ) -> None:
        self._channel = channel
        self._kind = kind
        self.method = method
        self._serializer = serializer
        self._deserializer = deserializer

    def __call__(self, *args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
        channel = self._channel
        key = None
        if self._kind == "unary_stream" and channel.policy.key_of is not None and args:
            key = channel.policy.key_of(args[0])
        member = channel.pool.pick(key)
        if member is None:
            return _FailedCall(channel._no_endpoint())
        inherited = SERVING_DEADLINE.get()
        if inherited is not None:
            left = max(0.0, inherited - _monotonic())
            timeout = left if timeout is None else min(timeout, left)
        factory = getattr(member.channel, self._kind)
        multicallable = factory(
            self.method,
            request_serializer=self._serializer,
            response_deserializer=self._deserializer,
            _registered_method=True,
        )
        return multicallable(*args, timeout=timeout, **kwargs)


class _FailedCall:
    """A call that failed before it started (no endpoint): every use raises."""

    def __init__(self, error: grpc.aio.AioRpcError) -> None:
        self._error = error

    def __await__(self) -> Any:
        raise self._error
        yield  # pragma: no cover  (makes this a generator)

    def __aiter__(self) -> _FailedCall:
        return self

    async def __anext__(self) -> Any:
        raise self._error

    async def read(self) -> Any:
        raise self._error

    async def write(self, _request: Any) -> None:
        raise self._error

    async def done_writing(self) -> None:
        raise self._error

    async def code(self) -> grpc.StatusCode:
        return self._error.code()

    async def details(self) -> str:
        return self._error.details() or ""

    def cancel(self) -> bool:
        return False

    def cancelled(self) -> bool:
        return False

    def done(self) -> bool:
        return True
