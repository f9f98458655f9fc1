"""OrderService process wiring: its settings, the bindings one worker serves, and
the background tasks: the order event tailer, the loop that finishes what a
placement could not, the trim of the order event log, and the re-homing of resting
orders when the matching engines change."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from clients.trading import MATCHING, ORDERS, RISK
from services.instruments import InstrumentCatalog
from services.orders.downstream import GrpcMatching, GrpcRisk, MatchingEngines
from services.orders.events import DEFAULT_QUEUE_SIZE, OrderEventHub
from services.orders.grpc_adapter import OrderServiceServicer
from services.orders.placement import DEFAULT_RECOVERY_GRACE_SECONDS, OrderDesk
from services.orders.ports import MatchingPort, RiskPort
from services.orders.rehoming import EngineDirectory, SymbolRehoming
from services.orders.risk_rehoming import RehomingRisk
from services.orders.store import OrderStore
from services.runtime.peers import open_mesh
from services.runtime.server import ServiceBinding
from services.runtime.settings import ServerSettings
from trading.v1 import orders_pb2_grpc

SERVICE_NAME = "trading.v1.OrderService"

# The event log is trimmed to its retention this often, by every process (the
# delete is idempotent): the log only needs to stay near its size bound, and each
# pass is a short range delete on the primary key.
EVENT_LOG_TRIM_SECONDS = 60.0
# Rows deleted per trim transaction: a few milliseconds each, so a writer never
# waits long behind the trim (and the event loop runs between chunks).
_TRIM_CHUNK = 10_000

_LOGGER = logging.getLogger(__name__)


class OrderSettings(ServerSettings):
    """OrderService settings: flags (--db-path) or TRADEMESH_ORDERS_* variables.

    workers > 1 is fine: every worker opens the same order store file.
    """

    model_config = SettingsConfigDict(env_prefix="TRADEMESH_ORDERS_")

    port: int = Field(50051, ge=0, le=65535, description="port to listen on; 0 picks a free one")
    risk_address: str = Field(
        "127.0.0.1:50052", description="RiskService host:port[,...] when not using etcd"
    )
    matching_address: str = Field(
        "127.0.0.1:50053", description="MatchingEngine host:port[,...] when not using etcd"
    )
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
    event_log_retention: int = Field(
        1_000_000,
        ge=1,
        description="order events kept in the store's event log (trimmed every minute); "
        "a process whose tailer lags further behind loses the rest",
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


async def trim_event_log(
    store: OrderStore, *, keep: int, every_seconds: float = EVENT_LOG_TRIM_SECONDS
) -> None:
    """Keeps the order event log at its newest `keep` events, forever: a periodic
    trim, so appending never pays for it."""
    while True:
        try:
            deleted = store.trim_events(keep, limit=_TRIM_CHUNK)
        except Exception:
            # The next pass tries again; the log only grows by a minute meanwhile.
            _LOGGER.exception("trimming the order event log failed; retrying")
            deleted = 0
        # A full chunk: more to delete, as soon as other tasks have run.
        await asyncio.sleep(0 if deleted == _TRIM_CHUNK else every_seconds)


@asynccontextmanager
async def running_desk(
    settings: OrderSettings,
    store: OrderStore,
    risk: RiskPort,
    matching: MatchingPort,
    engines: EngineDirectory,
) -> AsyncIterator[OrderDesk]:
    """The desk over the downstream ports of either transport (gRPC or REST),
    with its background work: the event tailer, recovery and the risk outbox,
    the event log trim, and the re-homing of symbols that change engine. On exit
    it stops them, lets placements finish and stops the tailer."""
    catalog = InstrumentCatalog.default()
    desk = OrderDesk(
        store,
        # An account that moved to another risk instance gets its reservation there.
        RehomingRisk(risk, store),
        matching,
        catalog=catalog,
        events=OrderEventHub(store, settings.event_queue_size),
        recovery_grace_seconds=settings.recovery_grace_seconds,
    )
    desk.events.start()
    # A symbol that moved to another engine gets its resting orders there.
    rehoming = SymbolRehoming(desk, store, engines, catalog.symbols)
    rehoming.start()
    background = [
        asyncio.create_task(
            retry_outstanding(
                desk,
                min_seconds=settings.retry_min_seconds,
                max_seconds=settings.retry_max_seconds,
            )
        ),
        asyncio.create_task(trim_event_log(store, keep=settings.event_log_retention)),
    ]
    try:
        yield desk
    finally:
        for task in background:
            task.cancel()
        for task in background:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await rehoming.close()  # an interrupted move is resumed by another process
        await desk.drain()  # placements the drain cancelled still finish their saga
        await desk.events.stop()


@asynccontextmanager
async def build_services(settings: OrderSettings) -> AsyncIterator[list[ServiceBinding]]:
    """One store connection, one mesh (risk and matching channels), one desk and
    one event tailer per worker (opened here, after the fork: grpc.aio channels
    cannot cross processes)."""
    store = OrderStore(settings.db_path)
    mesh = open_mesh(
        settings, {"risk": settings.risk_address, "matching": settings.matching_address}
    )
    try:
        # Risk by account and matching by symbol: each key's state lives on one instance.
        risk_channel = await mesh.channel(RISK)
        matching_channel = await mesh.channel(MATCHING)
        timeout = settings.downstream_timeout_seconds
        async with running_desk(
            settings,
            store,
            GrpcRisk(risk_channel, timeout_seconds=timeout),
            GrpcMatching(matching_channel, timeout_seconds=timeout),
            MatchingEngines(matching_channel.pool, timeout_seconds=timeout),
        ) as desk:
            yield [
                ServiceBinding(
                    SERVICE_NAME,
                    OrderServiceServicer(desk),
                    orders_pb2_grpc.add_OrderServiceServicer_to_server,
                    registry_name=ORDERS.service,
                )
            ]
    finally:
        await mesh.close()
        store.close()
