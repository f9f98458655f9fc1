"""Builds, runs and drains one trademesh grpc.aio server.

Every service runs on this: its servicers plus grpc.health.v1 (per service name),
reflection, the interceptor chain, keepalive and message-size limits, and a
graceful drain on SIGTERM/SIGINT:

    NOT_SERVING -> stop accepting calls -> in-flight calls finish within the
    grace period (then are cancelled) -> the service's resources close -> exit 0
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio

from discovery import Registration
from services.runtime.authz_policy import AuthzPolicy
from services.runtime.interceptors.chain import ChainInterceptor
from services.runtime.lifecycle import (
    run_processes,
    run_worker_process,
    serve_until_signalled,
    serving_in_loop,
)
from services.runtime.reflection import enable_reflection
from services.runtime.registry import registered
from services.runtime.settings import ServerSettings
from services.runtime.telemetry.channelz import enable_channelz
from services.runtime.telemetry.metrics import ServerMetrics, metrics_port
from services.runtime.tls import server_credentials

_LOGGER = logging.getLogger(__name__)

__version__ = "0.1.0"

S = TypeVar("S", bound=ServerSettings)


@dataclass(frozen=True, slots=True)
class ServiceBinding:
    """One servicer and how to add it; `name` is the full proto service name
    ("trading.v1.RiskService"), used for health status and reflection.

    `on_drain` runs once the server has stopped accepting calls: it ends what
    would otherwise hold the drain for the whole grace period, such as
    long-lived streams whose clients will reconnect elsewhere.
    """

    name: str
    servicer: Any
    add_to_server: Callable[[Any, grpc.aio.Server], None]
    on_drain: Callable[[], Awaitable[None] | None] | None = None
    # The name peers look this service up by in the registry ("risk"); with etcd
    # settings the server registers under it once serving.
    registry_name: str = ""


# Builds a process's servicers inside its event loop, after any fork, and closes
# their resources (channels, files, tasks) on exit.
ServiceFactory = Callable[[S], AbstractAsyncContextManager[Sequence[ServiceBinding]]]


def server_options(settings: ServerSettings) -> list[tuple[str, int]]:
    return [
        ("grpc.max_send_message_length", settings.max_message_bytes),
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        # Let clients keep idle connections alive with pings every >= 5 s (their
        # default in clients/channel_options.py is 30 s), and ping clients too.
        ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.keepalive_time_ms", 60_000),
        ("grpc.keepalive_timeout_ms", 20_000),
        # grpc turns SO_REUSEPORT on by default on Linux, which lets a second
        # server silently share a port by mistake. Only workers share on purpose.
        ("grpc.so_reuseport", 1 if settings.workers > 1 else 0),
    ]


class MeshServer:
    """A started grpc.aio server with health and reflection; drain() ends it."""

    def __init__(self, settings: ServerSettings, bindings: Sequence[ServiceBinding]) -> None:
        self.settings = settings
        self.bindings = tuple(bindings)
        self.health = health_aio.HealthServicer()
        self.registration: Registration | None = None
        self._exit_stack = contextlib.AsyncExitStack()
        credentials = None
        authz = None
        if not settings.plaintext:
            # Fails here, before any port is bound, when the files are unusable.
            credentials = server_credentials(settings)
            authz = AuthzPolicy.load(settings.authz_policy)
        self.metrics: ServerMetrics | None = None
        if settings.metrics_port >= 0:
            self.metrics = ServerMetrics(lambda: self.registration)
        # Metrics, authorization, deadlines, the failed-call log and domain errors
        # folded into one wrapper per method (interceptors/chain.py).
        rpc_metrics = self.metrics.rpc if self.metrics is not None else None
        interceptors: list[grpc.aio.ServerInterceptor] = [ChainInterceptor(rpc_metrics, authz)]
        make_server = grpc.aio.server
        if settings.grpc_server == "native":  # experimental, plaintext only
            from services.runtime.native_server import native_server as make_server
        self.server = make_server(
            interceptors=interceptors,
            options=server_options(settings),
            maximum_concurrent_rpcs=settings.max_concurrent_rpcs,
        )
        for binding in self.bindings:
            binding.add_to_server(binding.servicer, self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        debug = [enable_channelz(self.server)] if settings.channelz else []
        enable_reflection(
            [b.name for b in self.bindings] + [health.SERVICE_NAME, *debug], self.server
        )
        try:
            if credentials is None:
                self.port = self.server.add_insecure_port(settings.address)
            else:
                self.port = self.server.add_secure_port(settings.address, credentials)
        except RuntimeError:  # grpc raises this when the bind fails
            self.port = 0
        if self.port == 0:
            raise OSError(
                f"cannot listen on {settings.address}: the port is in use or the address is "
                "not local (choose another --port or --host)"
            )

    @property
    def address(self) -> str:
        host = self.settings.host
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"

    async def start(self) -> None:
        await self.server.start()
        port = metrics_port(self.settings, self.port)
        if self.metrics is not None and port is not None:
            self.metrics.start(self.settings.host, port)
        for name in ("", *(b.name for b in self.bindings)):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        _LOGGER.info(
            "serving %s on %s (%s)",
            ", ".join(b.name for b in self.bindings),
            self.address,
            "plaintext" if self.settings.plaintext else f"mTLS as {self.settings.identity}",
        )
        # Registered only once it serves, so no peer is sent here too early.
        for binding in self.bindings:
            if binding.registry_name:
                self.registration = await self._exit_stack.enter_async_context(
                    registered(self.settings, binding.registry_name, self.port, __version__)
                )

    async def drain(self, grace_seconds: float | None = None) -> None:
        """NOT_SERVING for every name (Watch streams see it), then stop."""
        grace = self.settings.grace_seconds if grace_seconds is None else grace_seconds
        _LOGGER.info("draining: NOT_SERVING, finishing in-flight calls within %.1f s", grace)
        await self.health.enter_graceful_shutdown()
        await self._exit_stack.aclose()  # out of the registry before calls stop
        stopping = asyncio.create_task(self.server.stop(grace))
        await asyncio.sleep(0)  # let stop() refuse new calls before the hooks run
        for binding in self.bindings:
            if binding.on_drain is not None:
                result = binding.on_drain()
                if inspect.isawaitable(result):
                    await result
        await stopping
        if self.metrics is not None:
            await self.metrics.stop()
        _LOGGER.info("stopped")


@asynccontextmanager
async def serving_server(
    services: ServiceFactory[S] | Sequence[ServiceBinding],
    settings: S | ServerSettings | None = None,
) -> AsyncIterator[MeshServer]:
    """Runs a server in this event loop for the duration of the block. The full
    runtime is on; tests use this to call (and drain) real servers (plaintext
    unless the settings name a `tls_dir`: lifecycle.in_process_settings)."""
    async with serving_in_loop(MeshServer, services, settings) as server:
        yield server  # type: ignore[misc]


@asynccontextmanager
async def serving(
    services: ServiceFactory[S] | Sequence[ServiceBinding],
    settings: S | ServerSettings | None = None,
) -> AsyncIterator[str]:
    """Like serving_server(), yielding the server's address."""
    async with serving_server(services, settings) as server:
        yield server.address


async def serve(settings: S, factory: ServiceFactory[S]) -> None:
    """Serves until SIGTERM or SIGINT, then drains gracefully."""
    await serve_until_signalled(MeshServer, settings, factory)


def run_worker(settings: S, factory: ServiceFactory[S]) -> int:
    """Entry point of one serving process: one event loop, grpc.aio throughout."""
    return run_worker_process(settings, lambda s: serve(s, factory))


def run(settings: S, factory: ServiceFactory[S]) -> int:
    """Serves with `settings.workers` processes; returns the exit code."""
    return run_processes(settings, lambda s: run_worker(s, factory))
