"""MarketDataService process wiring: its settings and the bindings one worker serves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from clients.trading import MARKETDATA, MATCHING
from services.errors import Unavailable
from services.instruments import InstrumentCatalog
from services.marketdata.engines import EngineFeeds
from services.marketdata.fanout import DEFAULT_TRADE_QUEUE_SIZE
from services.marketdata.grpc_adapter import (
    DEFAULT_WRITES_IN_FLIGHT,
    MarketDataFanout,
    MarketDataServicer,
)
from services.marketdata.quotes import QuoteBoard
from services.runtime.peers import open_mesh
from services.runtime.server import ServiceBinding
from services.runtime.settings import ServerSettings
from trading.v1 import marketdata_pb2_grpc

SERVICE_NAME = "trading.v1.MarketDataService"
DRAINING = "market data service is shutting down; resubscribe"


class MarketDataSettings(ServerSettings):
    """MarketDataService settings: flags (--matching-address) or TRADEMESH_MARKETDATA_*.

    Any number of workers: each one follows the engine's feed itself and serves
    its own subscribers, so workers share nothing.
    """

    model_config = SettingsConfigDict(env_prefix="TRADEMESH_MARKETDATA_")

    port: int = Field(50054, ge=0, le=65535, description="port to listen on; 0 picks a free one")
    matching_address: str = Field(
        "127.0.0.1:50053",
        description="matching engines to follow without etcd: host:port[,host:port]",
    )
    trade_queue_size: int = Field(
        DEFAULT_TRADE_QUEUE_SIZE,
        ge=1,
        description="trades a StreamTrades subscriber may fall behind before it is disconnected",
    )
    writes_in_flight: int = Field(
        DEFAULT_WRITES_IN_FLIGHT,
        ge=1,
        description="gRPC stream writes in flight at once, so the engine feed keeps up "
        "however many subscribers wait (services/marketdata/pacing.py)",
    )


@asynccontextmanager
async def build_services(settings: MarketDataSettings) -> AsyncIterator[list[ServiceBinding]]:
    """A quote board and subscriber hub per worker, fed by a follower per matching
    engine (found in etcd, or at --matching-address). On exit every open stream
    ends with UNAVAILABLE, then the followers stop."""
    board = QuoteBoard(InstrumentCatalog.default())
    fanout: MarketDataFanout = MarketDataFanout(trade_queue_size=settings.trade_queue_size)
    servicer = MarketDataServicer(board, fanout, settings.writes_in_flight)
    async with open_mesh(settings, {"matching": settings.matching_address}) as mesh:
        engines = EngineFeeds((await mesh.channel(MATCHING)).pool, board, fanout)
        engines.start()
        try:
            yield [
                ServiceBinding(
                    SERVICE_NAME,
                    servicer,
                    marketdata_pb2_grpc.add_MarketDataServiceServicer_to_server,
                    # Subscribers learn at once to resubscribe to another instance.
                    on_drain=lambda: fanout.close(Unavailable(DRAINING)),
                    registry_name=MARKETDATA.service,
                )
            ]
        finally:
            fanout.close(Unavailable(DRAINING))
            await engines.stop()
