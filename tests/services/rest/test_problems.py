"""Problem documents both ways: every gRPC code's HTTP status, and what a client
makes of a problem (refusals keep their class, the rest become Unavailable)."""

from __future__ import annotations

import orjson
import pytest

from services import errors
from services.runtime.rest.problems import (
    HTTP_STATUS,
    OVERLOADED_TYPE,
    error_from_problem,
    problem,
    problem_response,
)

# grpc-gateway's table, written out independently of the module under test.
EXPECTED_STATUS = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "ABORTED": 409,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499,
    "UNIMPLEMENTED": 501,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
    "INTERNAL": 500,
    "UNKNOWN": 500,
    "DATA_LOSS": 500,
}


class _Coded(errors.DomainError):
    """A domain error with any code, for the codes services.errors has no class for."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@pytest.mark.parametrize(("code", "status"), sorted(EXPECTED_STATUS.items()))
def test_every_code_has_grpc_gateways_status(code: str, status: int) -> None:
    response = problem_response(_Coded(code, f"went {code}"))
    body = orjson.loads(response.body)
    assert response.status_code == status
    assert response.media_type == "application/problem+json"
    expected = {
        "type": "about:blank",
        "title": code,
        "status": status,
        "detail": f"went {code}",
        "code": code,
    }
    if code == "INVALID_ARGUMENT":  # the only code with field violations
        expected["field_violations"] = []
    assert body == expected


def test_the_table_covers_every_grpc_code_but_ok() -> None:
    import grpc

    assert set(HTTP_STATUS) == {c.name for c in grpc.StatusCode} - {"OK"}
    assert HTTP_STATUS == EXPECTED_STATUS


def test_invalid_argument_carries_every_field_violation() -> None:
    err = errors.InvalidArgument(
        [
            errors.FieldViolation("quantity", "must be positive"),
            errors.FieldViolation("orders[3].price", "must be a multiple of the tick"),
        ]
    )
    body = orjson.loads(problem_response(err).body)
    assert body["status"] == 400
    assert body["field_violations"] == [
        {"field": "quantity", "description": "must be positive"},
        {"field": "orders[3].price", "description": "must be a multiple of the tick"},
    ]


@pytest.mark.parametrize(
    "err",
    [
        errors.NotFound("no order o-1"),
        errors.AlreadyExists("reservation r-1 exists"),
        errors.FailedPrecondition("account closed"),
        errors.ResourceExhausted("feed subscriber fell behind"),
    ],
)
def test_refusals_round_trip_with_their_class_and_message(err: errors.DomainError) -> None:
    response = problem_response(err)
    back = error_from_problem(response.status_code, response.body, "risk service")
    assert type(back) is type(err)
    assert back.message == err.message


def test_invalid_argument_round_trips_with_violations_and_names_the_peer() -> None:
    err = errors.InvalidArgument([errors.FieldViolation("side", "must be BUY or SELL")])
    response = problem_response(err)
    back = error_from_problem(response.status_code, orjson.loads(response.body), "risk service")
    assert isinstance(back, errors.InvalidArgument)
    assert back.violations == (errors.FieldViolation("side", "must be BUY or SELL"),)
    assert back.message.startswith("risk service refused the request: ")


def test_invalid_argument_without_violations_still_names_a_field() -> None:
    body = {"code": "INVALID_ARGUMENT", "detail": "bad", "status": 400}
    back = error_from_problem(400, body, "matching engine")
    assert isinstance(back, errors.InvalidArgument)
    assert back.violations == (errors.FieldViolation("", "bad"),)


@pytest.mark.parametrize(
    ("status", "body", "says"),
    [
        (503, problem("UNAVAILABLE", "draining").body, "(UNAVAILABLE): draining"),
        (500, problem("INTERNAL", "internal error; reference 1f").body, "(INTERNAL)"),
        (504, problem("DEADLINE_EXCEEDED", "slow").body, "(DEADLINE_EXCEEDED)"),
        (403, problem("PERMISSION_DENIED", "identity 'x'").body, "(PERMISSION_DENIED)"),
        (502, b"<html>bad gateway</html>", "(HTTP 502)"),
        (503, b"", "(HTTP 503)"),
        (500, None, "(HTTP 500)"),
        (404, b'{"detail": "Not Found"}', "(HTTP 404)"),  # not a problem of ours
        (200, b"[1, 2]", "(HTTP 200)"),
    ],
)
def test_failures_that_are_no_refusal_become_unavailable_naming_the_peer(
    status: int, body: bytes | None, says: str
) -> None:
    back = error_from_problem(status, body, "risk service")
    assert isinstance(back, errors.Unavailable)
    assert back.message.startswith("risk service unavailable ")
    assert says in back.message


def test_shedding_is_unavailable_but_a_domain_resource_exhausted_is_not() -> None:
    shed = problem("RESOURCE_EXHAUSTED", "overloaded", problem_type=OVERLOADED_TYPE)
    assert shed.status_code == 429
    assert isinstance(error_from_problem(429, shed.body, "risk"), errors.Unavailable)
    refused = problem_response(errors.ResourceExhausted("fell behind"))
    assert isinstance(error_from_problem(429, refused.body, "risk"), errors.ResourceExhausted)
