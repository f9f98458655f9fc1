"""pygrpc-native as MeshServer's gRPC server (`--grpc-server native`, experimental).

pygrpc-native (PyPI) answers grpc.aio.server()'s API with HTTP/2 and gRPC framing
done in Rust, off the GIL; servicers and interceptors stay in Python. It is an
optional extra, pinned: `pip install -e '.[native]'` installs pygrpc-native
0.5.0, the version this module is written against (it replaces a private
method of that version, below). Any other version is refused, naming that command.

It serves unary and server-streaming methods itself and sends the rest (client
streams, bidi, reflection) to a grpc.aio server behind it on a Unix socket, in a
/tmp/pygrpc-native-* directory. stop() (MeshServer.drain(), so SIGTERM/SIGINT
too) removes that directory; a process killed without it (SIGKILL, a crash)
leaves it behind. What MeshServer needs that it lacks, and how this module
covers it:

- TLS: none. Settings refuse `native` without `--plaintext` (settings.py); a
  quiet fall back to grpcio would leave an operator believing the flag took.
- maximum_concurrent_rpcs raises: the same limit is kept by an interceptor put
  first, answering RESOURCE_EXHAUSTED as grpc-core does.
- Tracing patches grpc.aio.server (telemetry/tracing.py) to put its span
  interceptor first; the same interceptors (tracing.server_interceptors()) come
  next here.
- time_remaining() of a call without a deadline is float(sys.maxsize) in 0.5.0,
  where grpc.aio says None. Carried to a downstream call as its timeout (clients/
  channel.py), that overflows grpc's deadline: DEADLINE_EXCEEDED at once. The
  private `pygrpc_native.aio._Context.time_remaining` is wrapped to answer None,
  as grpc.aio's does.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib import metadata
from typing import Any

import grpc

from services.runtime.interceptors.wrapping import Behavior, WrappingInterceptor
from services.runtime.telemetry import tracing

# grpc-core's words for a call refused by maximum_concurrent_rpcs.
_LIMIT_DETAILS = "Concurrent RPC limit exceeded!"


class ConcurrencyLimitInterceptor(WrappingInterceptor):
    """Refuses calls beyond `limit` in flight (streams included) before any other
    interceptor sees them. One event loop runs every call, native or fallback, so
    a plain counter is exact."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self.active = 0

    def wrap_unary_response(self, behavior: Behavior, method: str) -> Behavior:
        async def call(request_or_iterator: Any, context: grpc.aio.ServicerContext) -> Any:
            if self.active >= self.limit:
                await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, _LIMIT_DETAILS)
            self.active += 1
            try:
                return await behavior(request_or_iterator, context)
            finally:
                self.active -= 1

        return call

    def wrap_stream_response(self, behavior: Behavior, method: str) -> Behavior:
        async def stream(request_or_iterator: Any, context: grpc.aio.ServicerContext) -> Any:
            if self.active >= self.limit:
                await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, _LIMIT_DETAILS)
            self.active += 1
            try:
                async for response in behavior(request_or_iterator, context):
                    yield response
            finally:
                self.active -= 1

        return stream


# The version whose private _Context this module patches (pyproject's `native` extra).
PINNED_VERSION = "0.5.0"
_INSTALL = "pip install -e '.[native]'"
# What pygrpc-native's time_remaining() answers for a call without a deadline.
_NO_DEADLINE = float(sys.maxsize)


def check_version(installed: str | None) -> None:
    """Refuses any pygrpc-native but the pinned one: the time_remaining() patch
    reaches into its private context class, which another version may change."""
    if installed is None:
        raise OSError(f"--grpc-server native needs pygrpc-native {PINNED_VERSION}: {_INSTALL}")
    if installed != PINNED_VERSION:
        raise OSError(
            f"--grpc-server native is written for pygrpc-native {PINNED_VERSION}, found "
            f"{installed} (services/runtime/native_server.py patches its private context): "
            f"{_INSTALL}"
        )


def _installed_version() -> str | None:
    try:
        return metadata.version("pygrpc-native")
    except metadata.PackageNotFoundError:
        return None


def _no_deadline_is_none(context_class: Any) -> None:
    """Makes the context's time_remaining() None without a deadline (once)."""
    original = context_class.time_remaining
    if getattr(original, "_none_without_deadline", False):
        return

    def time_remaining(self: Any) -> float | None:
        left = original(self)
        return None if left >= _NO_DEADLINE else left

    time_remaining._none_without_deadline = True  # type: ignore[attr-defined]
    context_class.time_remaining = time_remaining


def native_server(
    *,
    interceptors: Sequence[grpc.aio.ServerInterceptor],
    options: Sequence[tuple[str, Any]],
    maximum_concurrent_rpcs: int | None,
) -> grpc.aio.Server:
    """A pygrpc-native grpc.aio server taking grpc.aio.server()'s arguments."""
    check_version(_installed_version())
    import pygrpc_native.aio

    _no_deadline_is_none(pygrpc_native.aio._Context)
    # The limit first: grpc-core refuses a call before any interceptor (a span) sees it.
    chain: list[Any] = []
    if maximum_concurrent_rpcs is not None:
        chain.append(ConcurrencyLimitInterceptor(maximum_concurrent_rpcs))
    chain += [*tracing.server_interceptors(), *interceptors]
    return pygrpc_native.aio.server(interceptors=chain, options=options)
