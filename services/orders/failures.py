"""How OrderService reads a downstream failure: worth retrying later, or a refusal;
and how a stored (or shared) failure is raised again."""

from __future__ import annotations

from services.errors import (
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unavailable,
)

# Errors after which retrying the same call later may succeed; any other
# DomainError is a definite refusal.
RETRYABLE = (Unavailable, ResourceExhausted)
_ERROR_TYPES: dict[str, type[DomainError]] = {
    cls.code: cls for cls in (NotFound, AlreadyExists, FailedPrecondition, ResourceExhausted)
}


def error_from_code(code: str, message: str) -> DomainError:
    """The error a stored (or shared) failure is raised again as."""
    if code == InvalidArgument.code:
        return InvalidArgument([FieldViolation("order", message)], message)
    return _ERROR_TYPES.get(code, Unavailable)(message)


def about(peer: str, err: DomainError) -> str:
    """`err`'s message, saying which downstream service failed (the gRPC ports'
    messages already do; in-process ones may not)."""
    if err.message.startswith(peer):
        return err.message
    return f"{peer} unavailable: {err.message}"
