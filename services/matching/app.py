"""MatchingEngine process wiring: its settings and the bindings one worker serves."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from pydantic import Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from clients.trading import MATCHING
from services.instruments import InstrumentCatalog
from services.matching.engine import DEFAULT_FEED_QUEUE_SIZE, MatchingEngine
from services.matching.grpc_adapter import MatchingEngineServicer
from services.runtime.server import ServiceBinding
from services.runtime.settings import ServerSettings
from trading.v1 import matching_pb2_grpc

SERVICE_NAME = "trading.v1.MatchingEngine"

# Trade ids are f"{engine_id}-{n}"; consumers accept ids of up to 128 characters.
_ENGINE_ID = re.compile(r"[A-Za-z0-9._\-]{1,64}")


class MatchingSettings(ServerSettings):
    """MatchingEngine settings: flags (--feed-queue-size) or TRADEMESH_MATCHING_* variables."""

    model_config = SettingsConfigDict(env_prefix="TRADEMESH_MATCHING_")

    port: int = Field(50053, ge=0, le=65535, description="port to listen on; 0 picks a free one")
    feed_queue_size: int = Field(
        DEFAULT_FEED_QUEUE_SIZE,
        ge=1,
        description="events buffered per feed subscriber; one that falls further behind is "
        "disconnected with RESOURCE_EXHAUSTED and must resubscribe",
    )
    engine_id: str = Field(
        "",
        description="prefix of the trade ids this engine assigns, unique among engines "
        "(letters, digits, '.', '_', '-'); default: matching-<host>-<port>",
    )

    @field_validator("workers")
    @classmethod
    def _one_worker(cls, workers: int) -> int:
        # The order books live in this process's memory: two workers would each
        # match half the orders against half a book.
        if workers != 1:
            raise ValueError(
                f"MatchingEngine keeps every order book in one process, so it runs with "
                f"workers=1 (got {workers}); add capacity by running more engines sharded "
                "by symbol"
            )
        return workers

    @field_validator("engine_id")
    @classmethod
    def _engine_id_shape(cls, engine_id: str) -> str:
        if engine_id and not _ENGINE_ID.fullmatch(engine_id):
            raise ValueError(
                f"engine id {engine_id!r} must be 1 to 64 letters, digits, '.', '_' or '-'"
            )
        return engine_id

    @model_validator(mode="after")
    def _default_engine_id(self) -> MatchingSettings:
        if not self.engine_id:
            host = re.sub(r"[^A-Za-z0-9.]", "_", self.host)  # "::" -> "__"
            # The start time keeps trade ids unique across restarts on one address.
            self.engine_id = f"matching-{host}-{self.port}-{time.time_ns() // 1_000_000:x}"
        return self


@asynccontextmanager
async def build_services(settings: MatchingSettings) -> AsyncIterator[list[ServiceBinding]]:
    """One engine per process; on exit its feed subscribers' streams end."""
    engine = MatchingEngine(
        InstrumentCatalog.default(),
        engine_id=settings.engine_id,
        feed_queue_size=settings.feed_queue_size,
    )
    try:
        yield [
            ServiceBinding(
                SERVICE_NAME,
                MatchingEngineServicer(engine),
                matching_pb2_grpc.add_MatchingEngineServicer_to_server,
                # Feed followers reconnect (to this engine once it is back).
                on_drain=engine.close,
                registry_name=MATCHING.service,
            )
        ]
    finally:
        engine.close()
