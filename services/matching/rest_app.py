"""MatchingEngine over HTTP/JSON: the bindings one REST process serves
(`python -m services.matching --protocol rest`); settings as in app.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from clients.trading import MATCHING
from services.instruments import InstrumentCatalog
from services.matching.app import SERVICE_NAME, MatchingSettings
from services.matching.engine import MatchingEngine
from services.matching.rest_adapter import matching_router
from services.runtime.rest.server import RestBinding


@asynccontextmanager
async def build_rest_services(settings: MatchingSettings) -> AsyncIterator[list[RestBinding]]:
    """One engine per process; on drain and exit its feed streams end."""
    engine = MatchingEngine(
        InstrumentCatalog.default(),
        engine_id=settings.engine_id,
        feed_queue_size=settings.feed_queue_size,
    )
    try:
        yield [
            RestBinding(
                SERVICE_NAME,
                matching_router(engine),
                registry_name=MATCHING.service,
                # Feed followers reconnect (to this engine once it is back).
                on_drain=engine.close,
            )
        ]
    finally:
        engine.close()
