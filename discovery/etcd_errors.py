"""Our etcd errors, and the translation of whatever aetcd or gRPC raised into them."""

from __future__ import annotations

import aetcd
import grpc

# Status codes that say "this member cannot serve us now", not "the request is wrong".
_UNREACHABLE_CODES = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED}
)


class EtcdError(Exception):
    """etcd refused or failed a request."""


class EtcdUnavailable(EtcdError):
    """No answer from the current endpoint (down, unreachable, no leader, timed out)."""


class LeaseNotFound(EtcdError):
    """The lease expired or was revoked (or etcd lost its data)."""


class WatchCompacted(EtcdError):
    """The watch start revision was compacted away; reload, then watch from the new one."""

    def __init__(self, compact_revision: int) -> None:
        super().__init__(f"revisions below {compact_revision} were compacted")
        self.compact_revision = compact_revision


def translate(exc: BaseException, endpoint: str, replaced: bool) -> EtcdError:
    """One of our errors for whatever aetcd or gRPC raised."""
    cause = exc if isinstance(exc, grpc.aio.AioRpcError) else exc.__cause__
    code = cause.code() if isinstance(cause, grpc.aio.AioRpcError) else None
    if isinstance(exc, aetcd.RevisionCompactedError):
        return WatchCompacted(int(exc.compacted_revision))
    if "lease not found" in str(exc):
        return LeaseNotFound(str(exc))
    unreachable = (
        aetcd.ConnectionFailedError,
        aetcd.ConnectionTimeoutError,
        aetcd.WatchTimeoutError,
        grpc.aio.UsageError,
        TimeoutError,
    )
    # gRPC's own text is a multi-line repr; its details line is what a log needs.
    reason = cause.details() if isinstance(cause, grpc.aio.AioRpcError) else str(exc)
    message = f"etcd {endpoint}: {reason or type(exc).__name__}"
    # `replaced`: another task failed over while this call was in flight on the old channel.
    if replaced or code in _UNREACHABLE_CODES or isinstance(exc, unreachable):
        return EtcdUnavailable(message)
    return EtcdError(message)


def timed_out(exc: BaseException) -> bool:
    cause = exc if isinstance(exc, grpc.aio.AioRpcError) else exc.__cause__
    deadline = isinstance(cause, grpc.aio.AioRpcError) and (
        cause.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    )
    return deadline or isinstance(exc, TimeoutError | aetcd.WatchTimeoutError)
