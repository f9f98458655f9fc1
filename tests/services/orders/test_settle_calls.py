"""Batched settlement over both transports: GrpcRisk.settle and HttpRisk.settle
against two real RiskService instances each (gRPC and REST), sharded by account:
one Settle per owner, every item's outcome exact and in order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass

import pytest

from clients.http_pool import HttpMesh
from clients.mesh import Mesh
from clients.trading import RISK
from services.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable
from services.model import OrderSpec, OrderType, Side, TimeInForce
from services.orders.downstream import GrpcRisk, ring_owner
from services.orders.http_downstream import HttpRisk
from services.orders.ports import FillDue, Released, ReleaseDue, RiskPort
from services.orders.risk_batches import owner_groups
from services.risk import app as risk_app
from services.risk.rest_app import build_rest_services
from services.runtime.rest.server import serving_rest
from services.runtime.server import serving

ACCOUNTS = [f"acct-{i}" for i in range(12)]


@dataclass
class Sharded:
    risk: RiskPort
    owner: Callable[[str], str | None]


async def _until_both_usable(usable: Callable[[], int]) -> None:
    for _ in range(200):  # 10 s at most
        if usable() == 2:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the two risk instances never became usable")


@pytest.fixture(params=["grpc", "rest"])
async def sharded(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Sharded]:
    monkeypatch.delenv("TRADEMESH_INSTRUMENTS", raising=False)
    async with AsyncExitStack() as stack:
        if request.param == "grpc":
            addresses = [
                await stack.enter_async_context(
                    serving(risk_app.build_services, risk_app.RiskSettings(port=0))
                )
                for _ in range(2)
            ]
            mesh = Mesh.static({"risk": addresses})
            stack.push_async_callback(mesh.close)
            channel = await mesh.channel(RISK)
            await _until_both_usable(lambda: len(channel.pool.usable()))
            yield Sharded(GrpcRisk(channel, timeout_seconds=2), ring_owner(channel.pool))
        else:
            addresses = [
                await stack.enter_async_context(
                    serving_rest(build_rest_services, risk_app.RiskSettings(port=0))
                )
                for _ in range(2)
            ]
            http = HttpMesh.static({"risk": addresses})
            stack.push_async_callback(http.close)
            pool = await http.pool(RISK.service, balancer=RISK.balancer, timeout_seconds=2)
            await _until_both_usable(lambda: len(pool.usable()))
            yield Sharded(HttpRisk(pool, timeout_seconds=2), ring_owner(pool))


def buy(quantity: int) -> OrderSpec:
    return OrderSpec("AAPL", Side.BUY, OrderType.LIMIT, TimeInForce.GTC, quantity, 10_000)


async def test_one_call_per_owner_and_every_outcome_exact(sharded: Sharded) -> None:
    risk = sharded.risk
    for account in ACCOUNTS:
        await risk.reserve(reservation_id=f"r-{account}", account_id=account, spec=buy(10))
    fills = [FillDue(f"r-{a}", a, "t-1", 9_900, 4) for a in ACCOUNTS]
    fills += [
        FillDue("r-acct-0", "acct-0", "t-1", 9_900, 4),  # a retry: replayed
        FillDue("r-none", "acct-1", "t-2", 9_900, 1),  # never reserved
        FillDue("r-acct-2", "acct-2", "t-3", 0, 1),  # invalid price
        FillDue("r-acct-3", "acct-3", "t-4", 10_001, 1),  # above the reserved price
    ]
    releases = [ReleaseDue(f"r-{a}", a) for a in ACCOUNTS[:3]] + [ReleaseDue("bad id", "x")]
    groups = owner_groups(fills, releases, sharded.owner)
    assert len(groups) == 2, "12 accounts over two instances: both own some"

    settled = await risk.settle(fills, releases)

    assert settled.fills[:13] == (False,) * 12 + (True,)
    missing, invalid, too_high = settled.fills[13:]
    assert isinstance(missing, NotFound) and "reservation r-none does not exist" in missing.message
    assert isinstance(invalid, InvalidArgument)
    assert [v.field for v in invalid.violations] == ["price"]
    assert isinstance(too_high, FailedPrecondition) and "above its reserved price" in str(too_high)
    assert settled.releases[:3] == (Released(6, 60_000),) * 3
    assert isinstance(settled.releases[3], InvalidArgument)
    # Every account's fill landed on its owner: the same calls again are replays there.
    again = await risk.settle(fills[:12], releases[:3])
    assert again.fills == (True,) * 12 and again.releases == (Released(0, 0),) * 3


async def test_an_empty_settle_makes_no_call(sharded: Sharded) -> None:
    settled = await sharded.risk.settle([], [])
    assert (settled.fills, settled.releases) == ((), ())


async def test_an_unreachable_owner_makes_its_items_unavailable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TRADEMESH_INSTRUMENTS", raising=False)
    async with serving(risk_app.build_services, risk_app.RiskSettings(port=0)) as address:
        pass  # stopped: its port refuses connections now
    mesh = Mesh.static({"risk": [address]})
    try:
        risk = GrpcRisk(await mesh.channel(RISK), timeout_seconds=0.5)
        settled = await risk.settle(
            [FillDue("r-1", "acct-1", "t-1", 100, 1)], [ReleaseDue("r-2", "acct-2")]
        )
    finally:
        await mesh.close()
    assert all(isinstance(o, Unavailable) for o in (*settled.fills, *settled.releases))
