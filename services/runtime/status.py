"""Maps domain errors onto gRPC status, and downstream gRPC failures back.

A DomainError becomes a `google.rpc.Status` whose code is the error's code name;
an InvalidArgument carries `google.rpc.BadRequest` field violations, which
grpcurl prints and `grpc_status.rpc_status.from_call` decodes on the client.
"""

from __future__ import annotations

import grpc
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from services import errors

_ERROR_BY_CODE: dict[grpc.StatusCode, type[errors.DomainError]] = {
    grpc.StatusCode.NOT_FOUND: errors.NotFound,
    grpc.StatusCode.ALREADY_EXISTS: errors.AlreadyExists,
    grpc.StatusCode.FAILED_PRECONDITION: errors.FailedPrecondition,
    grpc.StatusCode.RESOURCE_EXHAUSTED: errors.ResourceExhausted,
}


def to_rpc_status(err: errors.DomainError) -> status_pb2.Status:
    """The google.rpc.Status of a domain error, details included."""
    status = status_pb2.Status(code=code_pb2.Code.Value(err.code), message=err.message)
    if isinstance(err, errors.InvalidArgument):
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=v.field, description=v.description
                )
                for v in err.violations
            ]
        )
        status.details.add().Pack(bad_request)
    return status


def to_grpc_status(err: errors.DomainError) -> grpc.Status:
    """The status to abort a call with: code, message and the details trailer."""
    return rpc_status.to_status(to_rpc_status(err))


def _field_violations(err: grpc.aio.AioRpcError) -> list[errors.FieldViolation]:
    status = rpc_status.from_call(err)
    found: list[errors.FieldViolation] = []
    for detail in status.details if status else ():
        bad_request = error_details_pb2.BadRequest()
        if detail.Unpack(bad_request):
            found += [
                errors.FieldViolation(v.field, v.description) for v in bad_request.field_violations
            ]
    return found


def error_from_rpc(err: grpc.aio.AioRpcError, peer: str) -> errors.DomainError:
    """The domain error a failed downstream call means to its caller.

    `peer` names the callee ("risk service") so the message says where it failed.
    Transport failures, deadlines and downstream bugs all become Unavailable: the
    caller cannot tell whether the call was processed, and may retry later.
    """
    code, details = err.code(), err.details() or ""
    if code is grpc.StatusCode.INVALID_ARGUMENT:
        violations = _field_violations(err) or [errors.FieldViolation("", details)]
        return errors.InvalidArgument(violations, f"{peer} refused the request: {details}")
    known = _ERROR_BY_CODE.get(code)
    if known is not None:
        return known(details)
    return errors.Unavailable(f"{peer} unavailable ({code.name}): {details}")
