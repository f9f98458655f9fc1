"""RehomingRisk: a fill for an account that moved to another risk instance is
re-reserved there and applied; a release there holds nothing."""

from __future__ import annotations

import logging

import pytest

from services.errors import NotFound
from services.instruments import InstrumentCatalog
from services.orders.placement import OrderDesk
from services.orders.risk_rehoming import RehomingRisk
from services.orders.store import OrderStore
from services.risk.accounts import AccountDefaults, RiskBook
from tests.services.orders.support import (
    GRACE_SECONDS,
    Clock,
    InProcessMatching,
    InProcessRisk,
    order,
)

SELL = 2


@pytest.fixture
def desk(
    store: OrderStore,
    risk: InProcessRisk,
    matching: InProcessMatching,
    catalog: InstrumentCatalog,
    clock: Clock,
) -> OrderDesk:
    return OrderDesk(
        store,
        RehomingRisk(risk, store),
        matching,
        catalog=catalog,
        recovery_grace_seconds=GRACE_SECONDS,
        clock=clock,
    )


async def test_a_fill_for_an_account_that_moved_is_reserved_again_and_applied(
    desk: OrderDesk,
    risk: InProcessRisk,
    catalog: InstrumentCatalog,
    caplog: pytest.LogCaptureFixture,
) -> None:
    maker = (await desk.place(order("bob", "s-1", side=SELL, quantity=10, price=10_000))).order
    # The risk instance holding bob's reservation went away; its successor knows nothing.
    risk.book = successor = RiskBook(catalog, AccountDefaults())

    with caplog.at_level(logging.WARNING):
        await desk.place(order("alice", "b-1", quantity=4, price=10_000))
        assert await desk.settled()

    assert f"of order {maker.order_id}: RiskService has no reservation" in caplog.text
    assert "re-reserving 10 there" in caplog.text  # open 6 + the 4 being applied
    bob = successor.account("bob")
    assert [(p.quantity, p.reserved_sell) for p in bob.positions] == [(-4, 6)]
    assert bob.cash == AccountDefaults().initial_cash + 4 * 10_000
    assert await desk.settle_outbox() == 0


async def test_a_release_the_new_instance_does_not_know_holds_nothing(
    desk: OrderDesk, risk: InProcessRisk
) -> None:
    placed = (await desk.place(order("bob", "s-1", side=SELL, quantity=10))).order
    risk.faults.fail("release", NotFound(f"reservation {placed.order_id} does not exist"))

    await desk.cancel("bob", order_id=placed.order_id)

    assert await desk.settle_outbox() == 0, "the release is done, not retried forever"
