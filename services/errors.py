"""Domain errors: what went wrong, in words a caller can act on.

Domain modules raise these and never import a transport. Each adapter maps them
onto its own protocol: the gRPC runtime onto status codes with
`google.rpc.BadRequest` details (services/runtime/status.py), the REST adapter
onto HTTP problem documents. The `code` names are gRPC status code names, the
vocabulary both transports share.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One invalid field: its path in the request and what is wrong with it."""

    field: str
    description: str


class DomainError(Exception):
    """Base of every error a service reports to its caller on purpose."""

    code = "UNKNOWN"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(DomainError):
    """The request itself is wrong; retrying it unchanged cannot succeed."""

    code = "INVALID_ARGUMENT"

    def __init__(self, violations: list[FieldViolation], message: str | None = None) -> None:
        if not violations:
            raise ValueError("InvalidArgument needs at least one field violation")
        self.violations = tuple(violations)
        summary = "; ".join(f"{v.field}: {v.description}" for v in violations)
        super().__init__(message or f"invalid request: {summary}")


class NotFound(DomainError):
    code = "NOT_FOUND"


class AlreadyExists(DomainError):
    code = "ALREADY_EXISTS"


class FailedPrecondition(DomainError):
    """The request is well formed but the system's state forbids it now."""

    code = "FAILED_PRECONDITION"


class ResourceExhausted(DomainError):
    code = "RESOURCE_EXHAUSTED"


class Unavailable(DomainError):
    """A dependency could not be reached; the caller may retry later."""

    code = "UNAVAILABLE"


class Violations:
    """Collects every field violation of a request, so one reply names them all.

    >>> v = Violations()
    >>> v.require(qty > 0, "quantity", "must be positive")
    >>> v.raise_if_any()
    """

    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items: list[FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        self._items.append(FieldViolation(field, description))

    def require(self, ok: bool, field: str, description: str) -> bool:
        if not ok:
            self.add(field, description)
        return ok

    def __bool__(self) -> bool:
        return bool(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[FieldViolation]:
        return iter(self._items)

    def raise_if_any(self) -> None:
        if self._items:
            raise InvalidArgument(self._items)
