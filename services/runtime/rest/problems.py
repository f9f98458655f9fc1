"""Domain errors as RFC 9457 problem documents, and problem documents back.

The server side turns a DomainError into an HTTP status and an
`application/problem+json` body carrying the gRPC code name, so REST callers see
the same vocabulary as gRPC callers:

    {"type": "about:blank", "title": "INVALID_ARGUMENT", "status": 400,
     "detail": "invalid request: quantity: must be positive",
     "code": "INVALID_ARGUMENT",
     "field_violations": [{"field": "quantity", "description": "must be positive"}]}

The client side (error_from_problem) mirrors services/runtime/status.error_from_rpc:
a refusal keeps its DomainError class (and field violations); anything that says
"the callee could not answer" becomes Unavailable, naming the peer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from services import errors
from services.runtime.rest.responses import ProblemResponse

# grpc-gateway's mapping of gRPC codes onto HTTP statuses.
HTTP_STATUS: dict[str, int] = {
    "CANCELLED": 499,
    "UNKNOWN": 500,
    "INVALID_ARGUMENT": 400,
    "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "PERMISSION_DENIED": 403,
    "RESOURCE_EXHAUSTED": 429,
    "FAILED_PRECONDITION": 400,
    "ABORTED": 409,
    "OUT_OF_RANGE": 400,
    "UNIMPLEMENTED": 501,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DATA_LOSS": 500,
    "UNAUTHENTICATED": 401,
}

# A problem type of its own for load shedding, so a client can tell "this server
# is overloaded, try another" (Unavailable) from a domain RESOURCE_EXHAUSTED.
OVERLOADED_TYPE = "urn:trademesh:problem:overloaded"

# Refusals a caller keeps as their own class (as error_from_rpc does).
_REFUSALS: dict[str, type[errors.DomainError]] = {
    cls.code: cls
    for cls in (
        errors.NotFound,
        errors.AlreadyExists,
        errors.FailedPrecondition,
        errors.ResourceExhausted,
    )
}


def problem_body(
    code: str,
    detail: str,
    violations: Iterable[errors.FieldViolation] = (),
    problem_type: str = "about:blank",
) -> dict[str, Any]:
    """The problem document of a gRPC code name and a message."""
    body: dict[str, Any] = {
        "type": problem_type,
        "title": code,
        "status": HTTP_STATUS.get(code, 500),
        "detail": detail,
        "code": code,
    }
    if code == errors.InvalidArgument.code:
        body["field_violations"] = [
            {"field": v.field, "description": v.description} for v in violations
        ]
    return body


def error_body(err: errors.DomainError) -> dict[str, Any]:
    """The problem document of a domain error (SSE error frames use it too)."""
    violations = err.violations if isinstance(err, errors.InvalidArgument) else ()
    return problem_body(err.code, err.message, violations)


def problem(
    code: str,
    detail: str,
    violations: Iterable[errors.FieldViolation] = (),
    problem_type: str = "about:blank",
    headers: Mapping[str, str] | None = None,
    status: int | None = None,
) -> ProblemResponse:
    """A problem response; `status` overrides the code's HTTP status (a 405 the
    router raised stays 405, with code UNIMPLEMENTED)."""
    body = problem_body(code, detail, violations, problem_type)
    if status is not None:
        body["status"] = status
    return ProblemResponse(body, status_code=body["status"], headers=headers)


def problem_response(err: errors.DomainError) -> ProblemResponse:
    """The HTTP response a domain error becomes."""
    body = error_body(err)
    return ProblemResponse(body, status_code=body["status"])


def _parse(body: bytes | Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    if body is None or isinstance(body, Mapping):
        return body
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _violations(body: Mapping[str, Any]) -> list[errors.FieldViolation]:
    found = []
    for item in body.get("field_violations") or ():
        if isinstance(item, Mapping):
            found.append(
                errors.FieldViolation(str(item.get("field", "")), str(item.get("description", "")))
            )
    return found


def error_from_problem(
    http_status: int, body: bytes | Mapping[str, Any] | None, peer: str
) -> errors.DomainError:
    """The domain error a failed downstream HTTP call means to its caller.

    `peer` names the callee ("risk service"). Only a problem document with a
    known code counts as the callee's answer; any other failure (a proxy's HTML
    page, an empty 502, a shed request, a 5xx) becomes Unavailable: the caller
    cannot tell whether the call was processed, and may retry elsewhere or later.
    """
    doc = _parse(body)
    code = doc.get("code") if doc is not None else None
    if doc is None or not isinstance(code, str) or code not in HTTP_STATUS:
        return errors.Unavailable(f"{peer} unavailable (HTTP {http_status})")
    detail = str(doc.get("detail") or "")
    if doc.get("type") == OVERLOADED_TYPE:
        return errors.Unavailable(f"{peer} unavailable (overloaded): {detail}")
    if code == errors.InvalidArgument.code:
        violations = _violations(doc) or [errors.FieldViolation("", detail)]
        return errors.InvalidArgument(violations, f"{peer} refused the request: {detail}")
    known = _REFUSALS.get(code)
    if known is not None:
        return known(detail)
    return errors.Unavailable(f"{peer} unavailable ({code}): {detail}")
