"""RiskService over HTTP/JSON on a real uvicorn server: resources, every error
class as a problem document, /healthz through a drain, OpenAPI, metrics, shedding."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest
from fastapi import APIRouter

from services import errors
from services.risk.app import RiskSettings
from services.risk.rest_app import build_rest_services
from services.runtime.rest.problems import error_from_problem
from services.runtime.rest.server import RestBinding, serving_rest, serving_rest_server
from services.runtime.settings import ServerSettings

from .rest_support import asgi_get, call

PROBLEM = "application/problem+json"
ORDER = {
    "reservation_id": "r-1",
    "account_id": "acct-1",
    "symbol": "AAPL",
    "side": "SIDE_BUY",
    "quantity": 10,
    "price": 15_000,
}


@pytest.fixture
async def risk() -> AsyncIterator[tuple[aiohttp.ClientSession, str]]:
    async with (
        serving_rest(build_rest_services, RiskSettings(port=0)) as address,
        aiohttp.ClientSession() as session,
    ):
        yield session, f"http://{address}"


async def test_reserve_fill_release_and_account_mirror_the_proto_messages(risk) -> None:
    session, base = risk
    status, content_type, body = await call(session, "POST", f"{base}/v1/reservations", ORDER)
    assert (status, content_type) == (200, "application/json")
    assert body == {
        "reservation": {
            "reservation_id": "r-1",
            "account_id": "acct-1",
            "symbol": "AAPL",
            "side": "SIDE_BUY",
            "open_quantity": 10,
            "price": 15_000,
            "reserved_cash": 150_000,
        },
        "replayed": False,
    }
    replay = await call(session, "POST", f"{base}/v1/reservations", ORDER)
    assert replay[2]["replayed"] is True

    fill = {"account_id": "acct-1", "trade_id": "t-1", "price": 14_900, "quantity": 4}
    status, _, body = await call(session, "POST", f"{base}/v1/reservations/r-1/fills", fill)
    assert status == 200, body
    assert body["account"]["positions"] == [
        {"symbol": "AAPL", "quantity": 4, "reserved_buy": 6, "reserved_sell": 0}
    ]
    assert body["account"]["cash"] == 1_000_000_000 - 4 * 14_900

    release = {"account_id": "acct-1"}
    status, _, body = await call(session, "POST", f"{base}/v1/reservations/r-1:release", release)
    assert (status, body) == (200, {"released_quantity": 6, "released_cash": 6 * 15_000})

    status, _, account = await call(session, "GET", f"{base}/v1/accounts/acct-1")
    assert status == 200
    assert account["reserved_cash"] == 0
    assert account["buying_power"] == account["cash"] == 1_000_000_000 - 4 * 14_900
    assert set(account["limits"]) == {"max_order_quantity", "max_order_notional", "max_position"}


async def test_a_body_pydantic_rejects_is_400_with_one_violation_per_field(risk) -> None:
    session, base = risk
    bad = {**ORDER, "side": "SIDE_UP", "quantity": "ten", "colour": "red"}
    status, content_type, body = await call(session, "POST", f"{base}/v1/reservations", bad)
    assert (status, content_type) == (400, PROBLEM)
    assert body["code"] == body["title"] == "INVALID_ARGUMENT"
    assert body["type"] == "about:blank"
    assert sorted(v["field"] for v in body["field_violations"]) == ["colour", "quantity", "side"]
    side = next(v for v in body["field_violations"] if v["field"] == "side")
    assert "SIDE_BUY" in side["description"]


async def test_a_body_that_is_not_json_says_so(risk) -> None:
    session, base = risk
    status, _, body = await call(
        session, "POST", f"{base}/v1/reservations", data=b"side=SIDE_BUY",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    assert status == 400
    assert body["field_violations"][0]["field"] == "body"
    assert "application/json" in body["field_violations"][0]["description"]
    status, _, body = await call(
        session, "POST", f"{base}/v1/reservations", data=b"{not json",
        headers={"content-type": "application/json"},
    )  # fmt: skip
    assert status == 400
    assert body["field_violations"][0]["field"] == "body"


async def test_a_domain_invalid_argument_is_400_with_the_domains_violations(risk) -> None:
    session, base = risk
    bad = {**ORDER, "quantity": 0, "symbol": "NOPE"}
    status, content_type, body = await call(session, "POST", f"{base}/v1/reservations", bad)
    assert (status, content_type) == (400, PROBLEM)
    fields = {v["field"] for v in body["field_violations"]}
    assert {"quantity", "symbol"} <= fields
    # And a client reads it back as the same error.
    back = error_from_problem(status, body, "risk service")
    assert isinstance(back, errors.InvalidArgument)
    assert {v.field for v in back.violations} == fields


async def test_not_found_already_exists_and_failed_precondition(risk) -> None:
    session, base = risk
    status, content_type, body = await call(session, "GET", f"{base}/v1/accounts/nobody")
    assert (status, content_type, body["code"]) == (404, PROBLEM, "NOT_FOUND")
    assert "nobody" in body["detail"]

    await call(session, "POST", f"{base}/v1/reservations", ORDER)
    other = {**ORDER, "quantity": 11}
    status, _, body = await call(session, "POST", f"{base}/v1/reservations", other)
    assert (status, body["code"]) == (409, "ALREADY_EXISTS")

    huge = {**ORDER, "reservation_id": "r-2", "quantity": 100_001}
    status, _, body = await call(session, "POST", f"{base}/v1/reservations", huge)
    assert (status, body["code"]) == (400, "FAILED_PRECONDITION")
    assert "max_order_quantity" in body["detail"]
    assert "field_violations" not in body

    status, _, body = await call(session, "GET", f"{base}/v1/no/such/route")
    assert (status, content_type, body["code"]) == (404, PROBLEM, "NOT_FOUND")
    status, _, body = await call(session, "DELETE", f"{base}/v1/accounts/acct-1")
    assert (status, body["status"]) == (405, 405)


def _exploding_router() -> APIRouter:
    router = APIRouter()

    @router.get("/v1/explode", name="Explode")
    async def explode() -> None:
        raise RuntimeError("secret internals: password=hunter2")

    return router


async def test_an_unexpected_exception_is_500_with_a_reference_and_no_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    binding = RestBinding("test.Exploding", _exploding_router())
    async with serving_rest([binding]) as address, aiohttp.ClientSession() as session:
        with caplog.at_level(logging.ERROR):
            status, content_type, body = await call(session, "GET", f"http://{address}/v1/explode")
    assert (status, content_type, body["code"]) == (500, PROBLEM, "INTERNAL")
    text = orjson.dumps(body).decode()
    assert "hunter2" not in text and "Traceback" not in text and "RuntimeError" not in text
    reference = body["detail"].rsplit(" ", 1)[1]
    logged = [r for r in caplog.records if reference in r.getMessage()]
    assert len(logged) == 1, [r.getMessage() for r in caplog.records]
    assert logged[0].exc_info is not None and "hunter2" in str(logged[0].exc_info[1])
    # Logged once: not again by the server as an unhandled exception.
    assert not [r for r in caplog.records if "Exception in ASGI" in r.getMessage()]


def _blocking_router(entered: asyncio.Event, release: asyncio.Event) -> APIRouter:
    router = APIRouter()

    @router.get("/v1/slow", name="Slow")
    async def slow() -> dict[str, str]:
        entered.set()
        await release.wait()
        return {"finished": "yes"}

    return router


async def test_drain_reports_not_serving_stops_accepting_and_finishes_in_flight() -> None:
    entered, release = asyncio.Event(), asyncio.Event()
    binding = RestBinding("test.Slow", _blocking_router(entered, release))
    async with (
        serving_rest_server([binding]) as server,
        aiohttp.ClientSession() as session,
    ):
        base = f"http://{server.address}"
        assert await call(session, "GET", f"{base}/healthz") == (
            200, "application/json", {"status": "SERVING"},
        )  # fmt: skip
        status, _, body = await call(session, "GET", f"{base}/healthz?service=test.Slow")
        assert (status, body) == (200, {"status": "SERVING"})
        status, _, body = await call(session, "GET", f"{base}/healthz?service=no.Such")
        assert (status, body["code"]) == (404, "NOT_FOUND")

        in_flight = asyncio.create_task(call(session, "GET", f"{base}/v1/slow"))
        await asyncio.wait_for(entered.wait(), 5)
        draining = asyncio.create_task(server.drain(grace_seconds=5))
        await asyncio.sleep(0.3)
        assert not draining.done()  # held by the in-flight request
        # NOT_SERVING, and the listener is closed: new connections are refused.
        assert await asgi_get(server.config.app, "/healthz") == (503, b'{"status":"NOT_SERVING"}')
        async with aiohttp.ClientSession() as fresh:
            with pytest.raises(aiohttp.ClientConnectionError):
                await call(fresh, "GET", f"{base}/healthz")
        release.set()
        assert await asyncio.wait_for(in_flight, 5) == (
            200, "application/json", {"finished": "yes"},
        )  # fmt: skip
        await asyncio.wait_for(draining, 5)


async def test_drain_cancels_what_outlives_the_grace_period() -> None:
    entered, never = asyncio.Event(), asyncio.Event()
    binding = RestBinding("test.Slow", _blocking_router(entered, never))
    async with serving_rest_server([binding]) as server, aiohttp.ClientSession() as session:
        in_flight = asyncio.create_task(call(session, "GET", f"http://{server.address}/v1/slow"))
        await asyncio.wait_for(entered.wait(), 5)
        started = asyncio.get_running_loop().time()
        await server.drain(grace_seconds=0.3)
        assert asyncio.get_running_loop().time() - started < 3
        # Cancelled past the grace period: the server answers a bare 500, which a
        # client reads as "unavailable" (it cannot know whether the call took effect).
        status, _, body = await asyncio.wait_for(in_flight, 5)
        assert status == 500
        assert isinstance(error_from_problem(status, body, "slow"), errors.Unavailable)


async def test_openapi_lists_every_route_with_the_problem_schema(risk) -> None:
    session, base = risk
    status, _, spec = await call(session, "GET", f"{base}/openapi.json")
    assert status == 200
    assert spec["info"]["title"] == "trademesh RiskService"
    assert set(spec["paths"]) == {
        "/v1/reservations",
        "/v1/reservations/{reservation_id}:release",
        "/v1/reservations/{reservation_id}/fills",
        "/v1/reservations:settle",
        "/v1/reservations:batch",
        "/v1/accounts/{account_id}",
        "/healthz",
    }
    reserve = spec["paths"]["/v1/reservations"]["post"]
    problem = reserve["responses"]["default"]["content"]["application/problem+json"]["schema"]
    assert "field_violations" in problem["properties"]
    body_schema = reserve["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    side = spec["components"]["schemas"][body_schema.rsplit("/", 1)[1]]["properties"]["side"]
    assert side["enum"] == ["SIDE_UNSPECIFIED", "SIDE_BUY", "SIDE_SELL"]
    status, content_type, _ = await call(session, "GET", f"{base}/docs")
    assert (status, content_type.split(";")[0]) == (200, "text/html")


async def test_metrics_count_requests_by_route_template_method_and_status() -> None:
    settings = RiskSettings(port=0, metrics_port=0)
    async with (
        serving_rest(build_rest_services, settings) as address,
        aiohttp.ClientSession() as session,
    ):
        base = f"http://{address}"
        await call(session, "POST", f"{base}/v1/reservations", ORDER)
        await call(session, "POST", f"{base}/v1/reservations/r-1:release", {})
        await call(session, "GET", f"{base}/v1/accounts/nobody")
        await call(session, "GET", f"{base}/v1/accounts/nobody-else")
        status, _, text = await call(session, "GET", f"{base}/metrics")
    assert status == 200
    expected = [
        'http_server_requests_total{method="POST",route="/v1/reservations",status="200"} 1.0',
        'http_server_requests_total{method="POST",'
        'route="/v1/reservations/{reservation_id}:release",status="200"} 1.0',
        'http_server_requests_total{method="GET",route="/v1/accounts/{account_id}",'
        'status="404"} 2.0',
        'http_server_duration_seconds_bucket{le="0.0001",method="GET",'
        'route="/v1/accounts/{account_id}"}',
    ]
    for line in expected:
        assert line in text, line


async def test_metrics_are_off_with_metrics_port_minus_one(risk) -> None:
    session, base = risk  # serving_rest turns metrics off unless settings name a port
    status, _, body = await call(session, "GET", f"{base}/metrics")
    assert (status, body["code"]) == (404, "NOT_FOUND")


async def test_past_max_concurrent_requests_new_ones_are_shed_as_unavailable() -> None:
    entered, release = asyncio.Event(), asyncio.Event()
    binding = RestBinding("test.Slow", _blocking_router(entered, release))
    settings = ServerSettings(port=0, max_concurrent_rpcs=1)
    async with serving_rest([binding], settings) as address, aiohttp.ClientSession() as session:
        base = f"http://{address}"
        held = asyncio.create_task(call(session, "GET", f"{base}/v1/slow"))
        await asyncio.wait_for(entered.wait(), 5)
        status, _, body = await call(session, "GET", f"{base}/v1/slow")
        assert (status, body["code"]) == (429, "RESOURCE_EXHAUSTED")
        assert isinstance(error_from_problem(status, body, "slow"), errors.Unavailable)
        assert (await call(session, "GET", f"{base}/healthz"))[0] == 200  # probes pass
        release.set()
        assert (await asyncio.wait_for(held, 5))[0] == 200
        assert (await call(session, "GET", f"{base}/v1/slow"))[0] == 200
