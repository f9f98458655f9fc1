"""Deadlines and default timeouts for outgoing calls; pure, the channel applies them.

A call made while serving another carries the caller's deadline on (gRPC sends it as
`grpc-timeout`; a grpc.aio server sees it as `context.time_remaining()`), so work whose
answer nobody waits for is not started. A call with no caller deadline gets its
method's default timeout: every outgoing call has one, as in go-zero (2000 ms).

Deadlines are instants on the monotonic clock, never wall-clock time: they are
compared locally and sent on as a remaining duration.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field

DEFAULT_TIMEOUT_SECONDS = 2.0  # go-zero zrpc RpcClientConf Timeout default: 2000 ms


def remaining(deadline: float | None, clock: Callable[[], float] = time.monotonic) -> float | None:
    """Seconds left until the monotonic instant `deadline`, never below 0; None if None."""
    if deadline is None:
        return None
    left = deadline - clock()
    return left if left > 0.0 else 0.0


@dataclass(frozen=True, slots=True)
class Deadline:
    """An instant `at` on `clock` by which an answer is no longer useful."""

    at: float
    clock: Callable[[], float] = field(default=time.monotonic, compare=False, repr=False)

    @classmethod
    def after(cls, seconds: float, clock: Callable[[], float] = time.monotonic) -> Deadline:
        """The deadline `seconds` from now."""
        return cls(clock() + seconds, clock)

    @classmethod
    def from_remaining(
        cls, seconds: float | None, clock: Callable[[], float] = time.monotonic
    ) -> Deadline | None:
        """From a remaining time such as `context.time_remaining()` (None: no deadline)."""
        return None if seconds is None else cls(clock() + seconds, clock)

    def remaining(self) -> float:
        left = self.at - self.clock()
        return left if left > 0.0 else 0.0

    @property
    def expired(self) -> bool:
        return self.clock() >= self.at

    def earliest(self, other: Deadline | None) -> Deadline:
        """The sooner of the two (a call may only shorten the deadline it inherited)."""
        return self if other is None or self.at <= other.at else other


class MethodTimeouts:
    """Default timeout per full method name, per service, else a global default.

    Keys are full method names ("/trading.v1.RiskService/Reserve") or service names
    ("trading.v1.RiskService"); a method entry beats its service's, which beats `default`.
    """

    __slots__ = ("_by_method", "_by_service", "_cache", "default")

    def __init__(
        self,
        overrides: Mapping[str, float] | None = None,
        default: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        if default <= 0:
            raise ValueError(f"default timeout must be > 0 seconds, got {default}")
        self.default = default
        self._by_method: dict[str, float] = {}
        self._by_service: dict[str, float] = {}
        self._cache: dict[str, float] = {}
        for name, seconds in (overrides or {}).items():
            if seconds <= 0:
                raise ValueError(f"timeout for {name!r} must be > 0 seconds, got {seconds}")
            bare = name.strip("/")
            if "/" in bare:
                self._by_method["/" + bare] = seconds
            else:
                self._by_service[bare] = seconds

    def __getitem__(self, method: str) -> float:
        """The default timeout of `method` ("/package.Service/Method"). Hot path: cached."""
        found = self._cache.get(method)
        if found is None:
            found = self._by_method.get(method)
            if found is None:
                service = method[1 : method.rfind("/")] if method.startswith("/") else method
                found = self._by_service.get(service, self.default)
            self._cache[method] = found
        return found

    def timeout(self, method: str, deadline: Deadline | None = None) -> float:
        """The `timeout=` for a call to `method` made under an inherited `deadline`: the
        method default, shortened to what is left of the deadline. Zero means the
        deadline has passed: fail with DEADLINE_EXCEEDED without sending."""
        limit = self[method]
        if deadline is None:
            return limit
        left = deadline.remaining()
        return left if left < limit else limit


DEFAULT_TIMEOUTS = MethodTimeouts()  # every method 2.0 s


# The deadline of the call being served in this task (a monotonic instant), set by
# the server runtime for each incoming call and read by the mesh channel, so an
# outgoing call never outlives the call it serves. grpc.aio serves each call in
# its own task, so the value never leaks between calls.
SERVING_DEADLINE: ContextVar[float | None] = ContextVar("serving_deadline", default=None)
