"""Authorizes each REST request by the caller's certificate identity (mTLS only).

The same policy as the gRPC side (services/runtime/authz_policy.json): a route
is the gRPC method it mirrors, `<service name>/<route name>`, where the route's
name is the method's name ("Reserve"), or its snake_case function name
("reserve" -> "Reserve"). The allowed identities are resolved once per route;
a request pays one dict and one set lookup. A refusal is 403 PERMISSION_DENIED
naming the identity and the method, and one log line.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.routing import APIRoute

from services.errors import DomainError
from services.runtime.authz_policy import AuthzPolicy
from services.runtime.rest.protocol import peer_identity

_LOGGER = logging.getLogger(__name__)


class PermissionDenied(DomainError):
    code = "PERMISSION_DENIED"


def method_name(route_name: str) -> str:
    """The gRPC method a route mirrors: "Reserve" stays, "apply_fill" -> "ApplyFill"."""
    if "_" not in route_name and route_name[:1].isupper():
        return route_name
    return "".join(part[:1].upper() + part[1:] for part in route_name.split("_"))


def route_methods(service: str, router: APIRouter) -> Iterable[tuple[APIRoute, str]]:
    for route in router.routes:
        if isinstance(route, APIRoute):
            yield route, f"{service}/{method_name(route.name)}"


def authorizer(
    policy: AuthzPolicy, routes: Iterable[tuple[APIRoute, str]]
) -> Callable[[Request], Coroutine[Any, Any, None]]:
    """A FastAPI dependency refusing callers the policy does not allow."""
    # By id: routes compare by value, and the router hands back the very objects.
    table: dict[int, tuple[str, frozenset[str] | None]] = {}
    for route, method in routes:
        grpc_method = f"/{method}"
        allowed = None if policy.is_open(grpc_method) else policy.identities_for(grpc_method)
        table[id(route)] = (method, allowed)

    async def authorize(request: Request) -> None:
        method, allowed = table.get(id(request.scope.get("route")), ("", frozenset()))
        if allowed is None:
            return
        identity = peer_identity(request.scope)
        if identity in allowed:
            return
        who = f"identity {identity!r}" if identity else "a certificate without a trademesh identity"
        route = f"{request.method} {request.url.path}"
        _LOGGER.warning("denied: %s may not call %s (%s)", who, method or route, route)
        raise PermissionDenied(f"{who} may not call {method or route} ({route})")

    return authorize
