"""OrderService's REST process wiring: the same desk and background work as the
gRPC one (app.running_desk), with risk and matching called over HTTP/JSON.

Every hop of the REST variant is REST: the desk reaches the RiskService and the
MatchingEngines that registered with protocol "rest" (or at the static
--risk-address/--matching-address), ring-hashed by account and by symbol like
the gRPC mesh. Re-homing runs too: the HTTP pool gives it the engine ring and
calls pinned to one engine (http_downstream.HttpMatchingEngines).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from clients.trading import MATCHING, ORDERS, RISK
from services.orders.app import SERVICE_NAME, OrderSettings, running_desk
from services.orders.http_downstream import HttpMatching, HttpMatchingEngines, HttpRisk
from services.orders.rest_adapter import orders_router
from services.orders.store import OrderStore
from services.runtime.peers import open_http_mesh
from services.runtime.rest.server import RestBinding


@asynccontextmanager
async def build_rest_services(settings: OrderSettings) -> AsyncIterator[list[RestBinding]]:
    """One store connection, one HTTP mesh (a pooled session), one desk and one
    event tailer per worker, opened after the fork."""
    store = OrderStore(settings.db_path)
    mesh = open_http_mesh(
        settings, {"risk": settings.risk_address, "matching": settings.matching_address}
    )
    timeout = settings.downstream_timeout_seconds
    try:
        # The same balancers as the gRPC policies: each key's state lives on one instance.
        risk = await mesh.pool(RISK.service, balancer=RISK.balancer, timeout_seconds=timeout)
        matching = await mesh.pool(
            MATCHING.service, balancer=MATCHING.balancer, timeout_seconds=timeout
        )
        async with running_desk(
            settings,
            store,
            HttpRisk(risk, timeout_seconds=timeout),
            HttpMatching(matching, timeout_seconds=timeout),
            HttpMatchingEngines(matching, timeout_seconds=timeout),
        ) as desk:
            yield [RestBinding(SERVICE_NAME, orders_router(desk), registry_name=ORDERS.service)]
    finally:
        await mesh.close()
        store.close()
