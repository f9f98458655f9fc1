"""RiskService over HTTP/JSON: the bindings one REST process serves
(`python -m services.risk --protocol rest`); settings as in app.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from clients.trading import RISK
from services.instruments import InstrumentCatalog
from services.risk.accounts import RiskBook
from services.risk.app import SERVICE_NAME, RiskSettings
from services.risk.rest_adapter import risk_router
from services.runtime.rest.server import RestBinding


@asynccontextmanager
async def build_rest_services(settings: RiskSettings) -> AsyncIterator[list[RestBinding]]:
    """One RiskBook per process; it holds no resources to close."""
    book = RiskBook(InstrumentCatalog.default(), settings.account_defaults)
    yield [RestBinding(SERVICE_NAME, risk_router(book), registry_name=RISK.service)]
