"""Fixtures: an OrderDesk over a real store, RiskBook and MatchingEngine."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from services.instruments import InstrumentCatalog
from services.matching.engine import MatchingEngine
from services.orders.events import OrderEventHub
from services.orders.placement import OrderDesk
from services.orders.store import OrderStore
from services.risk.accounts import AccountDefaults, RiskBook
from tests.services.orders.support import GRACE_SECONDS, Clock, InProcessMatching, InProcessRisk


@pytest.fixture
def catalog(monkeypatch: pytest.MonkeyPatch) -> InstrumentCatalog:
    monkeypatch.delenv("TRADEMESH_INSTRUMENTS", raising=False)
    return InstrumentCatalog.default()


@pytest.fixture
def risk_book(catalog: InstrumentCatalog) -> RiskBook:
    return RiskBook(catalog, AccountDefaults())


@pytest.fixture
def engine(catalog: InstrumentCatalog) -> MatchingEngine:
    return MatchingEngine(catalog, engine_id="test")


@pytest.fixture
def risk(risk_book: RiskBook) -> InProcessRisk:
    return InProcessRisk(risk_book)


@pytest.fixture
def matching(engine: MatchingEngine) -> InProcessMatching:
    return InProcessMatching(engine)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "var" / "orders.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[OrderStore]:
    opened = OrderStore(db_path)
    yield opened
    opened.close()


@pytest.fixture
def make_desk(
    risk: InProcessRisk,
    matching: InProcessMatching,
    catalog: InstrumentCatalog,
    clock: Clock,
) -> Callable[[OrderStore], OrderDesk]:
    def make(store: OrderStore, events: OrderEventHub | None = None) -> OrderDesk:
        return OrderDesk(
            store,
            risk,
            matching,
            catalog=catalog,
            events=events,
            recovery_grace_seconds=GRACE_SECONDS,
            clock=clock,
        )

    return make


@pytest.fixture
def desk(make_desk: Callable[[OrderStore], OrderDesk], store: OrderStore) -> OrderDesk:
    return make_desk(store)
