"""The REST OrderService end to end in one process: risk, matching, orders and
market data each served over HTTP/JSON on loopback (serving_rest), orders
calling the other two through the REST mesh client."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from discovery.local_etcd import free_port
from services.matching.app import MatchingSettings
from services.matching.rest_app import build_rest_services as matching_services
from services.orders.app import OrderSettings
from services.orders.rest_app import build_rest_services as order_services
from services.risk.app import RiskSettings
from services.risk.rest_app import build_rest_services as risk_services
from services.runtime.rest.server import serving_rest
from tests.services.rest.rest_support import call, next_event

PROBLEM = "application/problem+json"


def order(client_order_id: str, account: str = "alice", **fields: Any) -> dict[str, Any]:
    return {
        "account_id": account,
        "client_order_id": client_order_id,
        "symbol": "AAPL",
        "side": "SIDE_BUY",
        "type": "ORDER_TYPE_LIMIT",
        "time_in_force": "TIME_IN_FORCE_GTC",
        "quantity": 10,
        "price": 18_900,
        **fields,
    }


@contextlib.asynccontextmanager
async def orders_over(db: Path, risk: str, matching: str) -> AsyncIterator[str]:
    settings = OrderSettings(
        port=0,
        risk_address=risk,
        matching_address=matching,
        db_path=db,
        downstream_timeout_seconds=1.0,
    )
    async with serving_rest(order_services, settings) as address:
        yield address


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as opened:
        yield opened


@pytest.fixture
async def orders(tmp_path: Path) -> AsyncIterator[str]:
    """OrderService's base URL, with RiskService and a MatchingEngine behind it."""
    async with (
        serving_rest(risk_services, RiskSettings(port=0)) as risk,
        serving_rest(matching_services, MatchingSettings(port=0)) as matching,
        orders_over(tmp_path / "orders.db", risk, matching) as address,
    ):
        yield f"http://{address}"


async def test_a_placed_order_fills_and_reads_back(
    orders: str, session: aiohttp.ClientSession
) -> None:
    status, _, maker = await call(
        session, "POST", f"{orders}/v1/orders", order("b-1", "bob", side="SIDE_SELL")
    )
    assert status == 200, maker
    assert maker["order"]["status"] == "ORDER_STATUS_NEW"

    status, content_type, taker = await call(
        session, "POST", f"{orders}/v1/orders", order("a-1", quantity=4)
    )
    assert (status, content_type) == (200, "application/json")
    placed = taker["order"]
    assert placed["status"] == "ORDER_STATUS_FILLED"
    assert (placed["filled_quantity"], placed["filled_notional"]) == (4, 4 * 18_900)
    assert [(f["quantity"], f["price"], f["aggressor"]) for f in taker["fills"]] == [
        (4, 18_900, True)
    ]
    assert taker["replayed"] is False

    by_id = f"{orders}/v1/accounts/alice/orders/{placed['order_id']}"
    status, _, got = await call(session, "GET", by_id)
    assert (status, got) == (200, placed)
    by_client_id = f"{orders}/v1/accounts/alice/orders:byClientId/a-1"
    assert (await call(session, "GET", by_client_id))[2] == placed

    # The maker's order was filled too, and it can cancel what rests.
    maker_id = maker["order"]["order_id"]
    cancel = f"{orders}/v1/accounts/bob/orders/{maker_id}:cancel"
    status, _, canceled = await call(session, "POST", cancel)
    assert status == 200, canceled
    assert canceled["canceled_quantity"] == 6
    assert canceled["order"]["status"] == "ORDER_STATUS_CANCELED"
    assert canceled["order"]["filled_quantity"] == 4

    listed = f"{orders}/v1/accounts/bob/orders?statuses=ORDER_STATUS_CANCELED&page_size=5"
    status, _, page = await call(session, "GET", listed)
    assert status == 200
    assert [o["order_id"] for o in page["orders"]] == [maker_id]
    assert page["next_page_token"] == ""

    # Another account's order is not found; a bad status filter names its index.
    status, _, missing = await call(
        session, "GET", f"{orders}/v1/accounts/bob/orders/{placed['order_id']}"
    )
    assert (status, missing["code"]) == (404, "NOT_FOUND")
    status, _, bad = await call(session, "GET", f"{orders}/v1/accounts/bob/orders?statuses=DONE")
    assert (status, bad["field_violations"][0]["field"]) == (400, "statuses[0]")


async def test_a_batch_gives_one_result_per_order_in_order(
    orders: str, session: aiohttp.ClientSession
) -> None:
    batch = {
        "orders": [
            order("b-1", "bob", side="SIDE_SELL", quantity=5),
            order("a-1", symbol="NOPE"),
            order("a-2", quantity=5),
            order("a-3", quantity=0),
        ]
    }
    status, _, reply = await call(session, "POST", f"{orders}/v1/orders:batch", batch)
    assert status == 200, reply
    results = reply["results"]
    assert [next(iter(r)) for r in results] == ["placed", "error", "placed", "error"]
    assert results[0]["placed"]["order"]["status"] == "ORDER_STATUS_NEW"
    assert results[2]["placed"]["order"]["status"] == "ORDER_STATUS_FILLED"
    assert results[1]["error"]["code"] == "INVALID_ARGUMENT"
    assert results[1]["error"]["status"] == 400
    assert [v["field"] for v in results[1]["error"]["field_violations"]] == ["symbol"]
    assert [v["field"] for v in results[3]["error"]["field_violations"]] == ["quantity"]

    # Too many orders: none is placed, the whole batch is refused.
    too_many = {"orders": [order(f"x-{i}") for i in range(1001)]}
    status, content_type, problem = await call(
        session, "POST", f"{orders}/v1/orders:batch", too_many
    )
    assert (status, content_type, problem["code"]) == (400, PROBLEM, "INVALID_ARGUMENT")
    assert problem["field_violations"][0]["field"] == "orders"
    status, _, _ = await call(session, "GET", f"{orders}/v1/accounts/alice/orders:byClientId/x-0")
    assert status == 404

    # A body FastAPI cannot read: one violation per bad field, by its path.
    bad_body = {"orders": [order("y-1"), order("y-2", price="cheap", side="SIDE_UP")]}
    status, _, problem = await call(session, "POST", f"{orders}/v1/orders:batch", bad_body)
    assert status == 400
    fields = sorted(v["field"] for v in problem["field_violations"])
    assert fields == ["orders[1].price", "orders[1].side"]


async def test_the_same_key_replays_and_different_parameters_conflict(
    orders: str, session: aiohttp.ClientSession
) -> None:
    first = (await call(session, "POST", f"{orders}/v1/orders", order("a-1")))[2]
    status, _, again = await call(session, "POST", f"{orders}/v1/orders", order("a-1"))
    assert status == 200
    assert again["replayed"] is True
    assert again["order"]["order_id"] == first["order"]["order_id"]

    status, _, problem = await call(
        session, "POST", f"{orders}/v1/orders", order("a-1", quantity=11)
    )
    assert (status, problem["code"]) == (409, "ALREADY_EXISTS")
    assert first["order"]["order_id"] in problem["detail"]


async def test_a_risk_refusal_is_a_failed_precondition_naming_the_limit(
    orders: str, session: aiohttp.ClientSession
) -> None:
    too_big = order("a-1", quantity=100_001, price=100)  # max_order_quantity is 100000
    status, content_type, problem = await call(session, "POST", f"{orders}/v1/orders", too_big)
    assert (status, content_type) == (400, PROBLEM)
    assert problem["code"] == problem["title"] == "FAILED_PRECONDITION"
    assert "100000" in problem["detail"]
    assert "field_violations" not in problem
    # The rejected order is on record with the reason.
    status, _, rejected = await call(
        session, "GET", f"{orders}/v1/accounts/alice/orders:byClientId/a-1"
    )
    assert rejected["status"] == "ORDER_STATUS_REJECTED"
    assert rejected["reject_reason"] == problem["detail"]


async def test_risk_down_is_unavailable(tmp_path: Path, session: aiohttp.ClientSession) -> None:
    nothing_there = f"127.0.0.1:{free_port()}"
    async with (
        serving_rest(matching_services, MatchingSettings(port=0)) as matching,
        orders_over(tmp_path / "orders.db", nothing_there, matching) as address,
    ):
        status, content_type, problem = await call(
            session, "POST", f"http://{address}/v1/orders", order("a-1")
        )
    assert (status, content_type) == (503, PROBLEM)
    assert problem["code"] == "UNAVAILABLE"
    assert "risk service" in problem["detail"]


async def test_order_events_stream_as_server_sent_events(
    orders: str, session: aiohttp.ClientSession
) -> None:
    async with session.get(f"{orders}/v1/accounts/alice/orders:events") as stream:
        assert stream.status == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        await call(session, "POST", f"{orders}/v1/orders", order("b-1", "bob", side="SIDE_SELL"))
        await call(session, "POST", f"{orders}/v1/orders", order("a-1", quantity=3))
        kinds = []
        for _ in range(2):
            event, data = await next_event(stream)
            assert event == "message"
            assert data["order"]["account_id"] == "alice"
            kinds.append((data["type"], data["sequence"]))
    assert kinds == [("ORDER_EVENT_TYPE_ACCEPTED", 1), ("ORDER_EVENT_TYPE_FILLED", 2)]

    status, _, problem = await call(session, "GET", f"{orders}/v1/accounts/bad%20id/orders:events")
    assert (status, problem["field_violations"][0]["field"]) == (400, "account_id")
