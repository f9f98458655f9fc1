"""Authorizes each call by the caller's certificate identity (mutual TLS only).

The TLS handshake has already verified the client's certificate against the mesh
CA; this interceptor reads the identity it names (`spiffe://trademesh/<identity>`,
grpc's `peer_spiffe_id` auth property, present when the certificate holds exactly
one SPIFFE URI SAN) and checks it against the policy (services/runtime/authz_policy.py).
A refusal is PERMISSION_DENIED naming the identity and the method, and one log line.

Cost: the allowed identities are computed once per method (WrappingInterceptor);
a call pays `context.auth_context()` (~3 µs, grpc copies the connection's auth
properties) and one frozenset lookup. The identity is not cached by peer address:
a closed connection's address can be reused by another client holding another
certificate.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any, NoReturn

import grpc

from clients.tls import SPIFFE_PREFIX
from services.runtime.authz_policy import AuthzPolicy
from services.runtime.interceptors.wrapping import Behavior, WrappingInterceptor

_LOGGER = logging.getLogger(__name__)
SPIFFE_PROPERTY = "peer_spiffe_id"


def peer_identity(context: grpc.aio.ServicerContext) -> str | None:
    """The caller's mesh identity ("orders"), None without one."""
    found = context.auth_context().get(SPIFFE_PROPERTY)
    if not found:
        return None
    spiffe = found[0].decode(errors="replace")
    return spiffe.removeprefix(SPIFFE_PREFIX) if spiffe.startswith(SPIFFE_PREFIX) else None


async def deny(context: grpc.aio.ServicerContext, method: str) -> NoReturn:
    identity = peer_identity(context)
    who = f"identity {identity!r}" if identity else "a certificate without a trademesh identity"
    _LOGGER.warning("denied: %s may not call %s (peer %s)", who, method, context.peer())
    await context.abort(grpc.StatusCode.PERMISSION_DENIED, f"{who} may not call {method}")
    raise AssertionError("abort() raises")  # pragma: no cover


def allowed_identities(policy: AuthzPolicy, method: str) -> frozenset[bytes]:
    """The SPIFFE IDs that may call `method`, as the raw property values: compared
    without decoding on the hot path."""
    return frozenset(
        f"{SPIFFE_PREFIX}{identity}".encode() for identity in policy.identities_for(method)
    )


class AuthzInterceptor(WrappingInterceptor):
    """Keep it first in the chain: a refused call does no other work."""

    def __init__(self, policy: AuthzPolicy) -> None:
        super().__init__()
        self.policy = policy

    def wrap_handler(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        if self.policy.is_open(method):
            return handler  # probes and reflection: no per-call work at all
        return super().wrap_handler(handler, method)

    def wrap_unary_response(self, behavior: Behavior, method: str) -> Behavior:
        allowed = allowed_identities(self.policy, method)

        async def call(request_or_iterator: Any, context: grpc.aio.ServicerContext) -> Any:
            # Hot path: one auth-context read and one set lookup.
            found = context.auth_context().get(SPIFFE_PROPERTY)
            if not found or found[0] not in allowed:
                await deny(context, method)
            return await behavior(request_or_iterator, context)

        return call

    def wrap_stream_response(self, behavior: Behavior, method: str) -> Behavior:
        allowed = allowed_identities(self.policy, method)

        async def stream(
            request_or_iterator: Any, context: grpc.aio.ServicerContext
        ) -> AsyncIterator[Any]:
            found = context.auth_context().get(SPIFFE_PROPERTY)
            if not found or found[0] not in allowed:
                await deny(context, method)
            async for response in behavior(request_or_iterator, context):
                yield response

        return stream
