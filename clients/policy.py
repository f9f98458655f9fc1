"""How the mesh calls one service: balancing, affinity, deadlines, retries, breaking.

One `ServicePolicy` per callee, chosen by whoever knows the callee (the services
declare theirs in services/peers.py); this module knows nothing of trading.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc

from clients.resilience.deadline import DEFAULT_TIMEOUTS, MethodTimeouts

# Codes that say something about the endpoint rather than the request: they feed
# latency/success stats, outlier ejection and the throttle (go-zero codes.Acceptable
# counts the same ones as failures). Business errors are healthy answers.
ENDPOINT_FAILURES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.DATA_LOSS,
        grpc.StatusCode.UNIMPLEMENTED,
    }
)

# Retried on another endpoint, for idempotent methods: the endpoint could not be
# reached or refused the call before working on it (shedding). Never
# DEADLINE_EXCEEDED: the caller's time is spent.
RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED})


@dataclass(frozen=True)
class ServicePolicy:
    """The client side of one service."""

    # Name in the registry (/trademesh/services/<service>/...).
    service: str
    # Full proto service name whose grpc.health.v1 status gates the endpoints
    # ("" checks the server as a whole).
    health_service: str = ""
    # "round_robin", "p2c" or "ring_hash" (clients/balancers).
    balancer: str = "p2c"
    # Affinity key of a request for ring_hash (account id, symbol); None: any endpoint.
    key_of: Callable[[Any], str | None] | None = None
    timeouts: MethodTimeouts = DEFAULT_TIMEOUTS
    # Attempts per unary call, the first included (gRPC A6 caps maxAttempts at 5).
    max_attempts: int = 3
    # Methods safe to repeat after an ambiguous failure. Every trademesh method is
    # idempotent by contract (idempotency keys); a non-idempotent method is only
    # retried when the channel is sure the request never reached a server.
    idempotent: bool = True
    # Retry budget (Linkerd): retries may add at most this share of the calls...
    retry_ratio: float = 0.2
    # ...plus this many per second, so a quiet client can still retry.
    retry_min_per_second: float = 10.0
    # Client-side adaptive throttling (Google SRE book, ch. 21) of the whole service.
    throttle: bool = True
    # Outlier ejection (Envoy defaults): this many consecutive endpoint failures
    # eject an endpoint for base x times-ejected seconds, at most this share at once.
    consecutive_failures: int = 5
    base_ejection_seconds: float = 30.0
    max_ejection_percent: int = 50
    # Channel arguments for every endpoint's grpc.aio channel.
    channel_options: tuple[tuple[str, Any], ...] = field(default=())

    def __post_init__(self) -> None:
        if not 1 <= self.max_attempts <= 5:
            raise ValueError(f"max_attempts must be 1..5, got {self.max_attempts}")
        if self.balancer == "ring_hash" and self.key_of is None:
            raise ValueError(f"{self.service}: ring_hash needs key_of (the request's key)")
