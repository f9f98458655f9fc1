"""MarketDataService's REST process wiring: the same quote board and fanout as
app.py, fed by the REST matching engines' event streams and served as HTTP/JSON."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from clients.trading import MARKETDATA, MATCHING
from services.errors import Unavailable
from services.instruments import InstrumentCatalog
from services.marketdata.app import DRAINING, SERVICE_NAME, MarketDataSettings
from services.marketdata.engines import EngineFeeds
from services.marketdata.http_feed import HttpMatchingFeed, RestFanout
from services.marketdata.quotes import QuoteBoard
from services.marketdata.rest_adapter import marketdata_router
from services.runtime.peers import open_http_mesh
from services.runtime.rest.server import RestBinding


@asynccontextmanager
async def build_rest_services(settings: MarketDataSettings) -> AsyncIterator[list[RestBinding]]:
    """A quote board and subscriber hub per worker, fed by a follower per REST
    matching engine (found in etcd, or at --matching-address), each for the
    symbols it owns on the same ring as the gRPC variant. On exit every open
    stream ends with UNAVAILABLE, then the followers stop."""
    board = QuoteBoard(InstrumentCatalog.default())
    fanout: RestFanout = RestFanout(trade_queue_size=settings.trade_queue_size)
    async with open_http_mesh(settings, {"matching": settings.matching_address}) as mesh:
        pool = await mesh.pool(MATCHING.service, balancer=MATCHING.balancer)

        def follow(instance_id: str, symbols: tuple[str, ...]) -> HttpMatchingFeed:
            return HttpMatchingFeed(pool, instance_id, board, fanout, symbols=symbols)

        engines = EngineFeeds(pool, board, fanout, new_feed=follow)  # type: ignore[arg-type]
        engines.start()
        try:
            yield [
                RestBinding(
                    SERVICE_NAME,
                    marketdata_router(board, fanout),
                    registry_name=MARKETDATA.service,
                    # Subscribers learn at once to resubscribe to another instance.
                    on_drain=lambda: fanout.close(Unavailable(DRAINING)),
                )
            ]
        finally:
            fanout.close(Unavailable(DRAINING))
            await engines.stop()
