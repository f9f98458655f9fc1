"""Follows one endpoint's grpc.health.v1 status with a Watch stream.

The mesh stops picking an endpoint the moment it reports NOT_SERVING (a drain
starts with that) and takes it back when it reports SERVING again. A server
without the health service (UNIMPLEMENTED) counts as serving; a broken stream
counts as not serving until it is re-established.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from discovery import Backoff

_LOGGER = logging.getLogger(__name__)

SERVING = health_pb2.HealthCheckResponse.SERVING


async def watch_health(
    channel: grpc.aio.Channel,
    service: str,
    on_change: Callable[[bool], None],
    *,
    backoff: Backoff | None = None,
) -> None:
    """Calls `on_change(serving)` whenever the status changes; runs until cancelled."""
    backoff = backoff or Backoff(initial=0.1, maximum=2.0)
    stub = health_pb2_grpc.HealthStub(channel)
    serving: bool | None = None

    def report(now: bool) -> None:
        nonlocal serving
        if now != serving:
            serving = now
            on_change(now)

    while True:
        try:
            async for reply in stub.Watch(health_pb2.HealthCheckRequest(service=service)):
                report(reply.status == SERVING)
                backoff.reset()
        except grpc.aio.AioRpcError as err:
            if err.code() is grpc.StatusCode.UNIMPLEMENTED:
                report(True)
                return
            report(False)
        else:
            report(False)  # the server ended the stream: it is going away
        await asyncio.sleep(backoff.next())
