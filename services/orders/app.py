"""OrderService process wiring: its settings, the bindings one worker serves, and
the background loop that finishes what a placement could not."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from services.instruments import InstrumentCatalog
from services.orders.downstream import GrpcMatching, GrpcRisk
from services.orders.events import DEFAULT_QUEUE_SIZE, OrderEventHub
from services.orders.grpc_adapter import OrderServiceServicer
from services.orders.placement import DEFAULT_RECOVERY_GRACE_SECONDS, OrderDesk
from services.orders.store import OrderStore
from services.runtime.channels import open_channel
from services.runtime.server import ServiceBinding
from services.runtime.settings import ServerSettings
from trading.v1 import orders_pb2_grpc

SERVICE_NAME = "trading.v1.OrderService"

_LOGGER = logging.getLogger(__name__)


class OrderSettings(ServerSettings):
    """OrderService settings: flags (--db-path) or TRADEMESH_ORDERS_* variables.

    workers > 1 is fine: every worker opens the same order store file.
    """

    model_config = SettingsConfigDict(env_prefix="TRADEMESH_ORDERS_")

    port: int = Field(50051, ge=0, le=65535, description="port to listen on; 0 picks a free one")
    risk_address: str = Field("127.0.0.1:50052", description="RiskService host:port")
    matching_address: str = Field("127.0.0.1:50053", description="MatchingEngine host:port")
    db_path: Path = Field(
        Path("var/orders.db"),
        description="the order store (SQLite file; relative paths start at the working "
        "directory; missing directories are created); every worker shares it",
    )
    downstream_timeout_seconds: float = Field(
        2.0, gt=0, description="deadline of each call to RiskService and the MatchingEngine"
    )
    event_queue_size: int = Field(
        DEFAULT_QUEUE_SIZE,
        ge=1,
        description="order events buffered per StreamOrderEvents subscriber; one that falls "
        "further behind is disconnected with RESOURCE_EXHAUSTED and must resubscribe",
    )
    recovery_grace_seconds: float = Field(
        DEFAULT_RECOVERY_GRACE_SECONDS,
        gt=0,
        description="age after which a pending order is unwound by recovery (must exceed "
        "the longest placement: about 4 downstream timeouts)",
    )
    retry_min_seconds: float = Field(
        1.0, gt=0, description="pause between passes of the recovery and risk-outbox loop"
    )
    retry_max_seconds: float = Field(
        30.0, gt=0, description="longest pause of that loop while a downstream service is down"
    )

    @model_validator(mode="after")
    def _grace_outlasts_placements(self) -> OrderSettings:
        # A placement makes at most 4 downstream calls in a row (reserve, submit,
        # and the cancel + repeated submit that unwind it); recovering its order
        # any sooner could unwind a placement still running in another worker.
        if self.recovery_grace_seconds <= 4 * self.downstream_timeout_seconds:
            raise ValueError(
                f"recovery_grace_seconds ({self.recovery_grace_seconds}) must exceed 4 x "
                f"downstream_timeout_seconds ({4 * self.downstream_timeout_seconds})"
            )
        if self.retry_max_seconds < self.retry_min_seconds:
            raise ValueError("retry_max_seconds must be at least retry_min_seconds")
        return self


async def retry_outstanding(desk: OrderDesk, *, min_seconds: float, max_seconds: float) -> None:
    """Recovers stale pending orders and retries due risk calls, forever.

    The first pass runs at once: it is the start-up recovery, run here rather
    than before serving so a downstream service that is down cannot hold the
    start-up for (pending orders x timeout). While work stays outstanding, the
    pause doubles up to `max_seconds`.
    """
    delay = 0.0
    while True:
        await asyncio.sleep(delay)
        try:
            outstanding = await desk.recover_pending() + await desk.settle_outbox()
        except Exception:
            # One bad pass (a locked database, a bug) must not end every later
            # recovery; it is logged with its traceback and retried after a pause.
            _LOGGER.exception("recovery pass failed; retrying")
            outstanding = 1
        delay = min(max(delay * 2, min_seconds), max_seconds) if outstanding else min_seconds


@asynccontextmanager
async def build_services(settings: OrderSettings) -> AsyncIterator[list[ServiceBinding]]:
    """One store connection, two downstream channels and one desk per worker
    (opened here, after the fork: grpc.aio channels cannot cross processes)."""
    store = OrderStore(settings.db_path)
    risk_channel = open_channel(settings.risk_address)
    matching_channel = open_channel(settings.matching_address)
    timeout = settings.downstream_timeout_seconds
    desk = OrderDesk(
        store,
        GrpcRisk(risk_channel, timeout_seconds=timeout),
        GrpcMatching(matching_channel, timeout_seconds=timeout),
        catalog=InstrumentCatalog.default(),
        events=OrderEventHub(settings.event_queue_size),
        recovery_grace_seconds=settings.recovery_grace_seconds,
    )
    retry = asyncio.create_task(
        retry_outstanding(
            desk, min_seconds=settings.retry_min_seconds, max_seconds=settings.retry_max_seconds
        )
    )
    try:
        yield [
            ServiceBinding(
                SERVICE_NAME,
                OrderServiceServicer(desk),
                orders_pb2_grpc.add_OrderServiceServicer_to_server,
            )
        ]
    finally:
        retry.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await retry
        await desk.drain()  # placements the drain cancelled still finish their saga
        desk.events.close()
        await risk_channel.close()
        await matching_channel.close()
        store.close()
