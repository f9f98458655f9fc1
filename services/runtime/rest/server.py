"""Builds, runs and drains one trademesh REST (HTTP/JSON) server on uvicorn.

The REST variant of services/runtime/server.py, with the same life cycle:

    /healthz NOT_SERVING -> out of the registry -> stop accepting connections ->
    on_drain hooks end long-lived streams -> in-flight requests finish within the
    grace period (then are cancelled) -> the service's resources close -> exit 0

uvicorn runs inside this process's event loop (Server.startup/shutdown, not its
own run loop), on a socket bound here: the port is known at once (--port 0),
a bind failure is an OSError with a sentence, and workers share the port by
SO_REUSEPORT exactly as gRPC workers do.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import socket
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import TypeVar

import uvicorn
from fastapi import APIRouter

from discovery import Registration
from services.runtime.authz_policy import AuthzPolicy
from services.runtime.lifecycle import (
    run_processes,
    run_worker_process,
    serve_until_signalled,
    serving_in_loop,
)
from services.runtime.registry import registered
from services.runtime.rest.app import Health, __version__, build_app
from services.runtime.rest.metrics import HttpMetrics
from services.runtime.rest.protocol import IdentifyingHttpProtocol
from services.runtime.rest.tls import ServerTls
from services.runtime.settings import ServerSettings

_LOGGER = logging.getLogger(__name__)

S = TypeVar("S", bound=ServerSettings)

# Connections waiting to be accepted; benchmarks open hundreds at once.
BACKLOG = 2048


@dataclass(frozen=True, slots=True)
class RestBinding:
    """One service's routes. `name` is the full proto service name
    ("trading.v1.RiskService"): its /healthz name and, with each route's name
    (the gRPC method it mirrors: name="Reserve", or a function named reserve),
    what the authorization policy checks. `on_drain` runs once the server stops
    accepting connections (it may return an awaitable), to end long-lived streams.
    """

    name: str
    router: APIRouter
    # Registers under this name with protocol "rest" once serving ("risk").
    registry_name: str | None = None
    on_drain: Callable[[], object] | None = None


# Builds a process's routers inside its event loop, after any fork, and closes
# their resources on exit (the shape of build_services in each app.py).
RestFactory = Callable[[S], AbstractAsyncContextManager[Sequence[RestBinding]]]


def _listen(settings: ServerSettings) -> socket.socket:
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # restart on the same port
        if settings.workers > 1:  # only workers share a port, on purpose
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((settings.host, settings.port))
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise OSError(
            f"cannot listen on {settings.address}: the port is in use or the address is "
            "not local (choose another --port or --host)"
        ) from None
    sock.setblocking(False)
    return sock


class RestServer:
    """A started uvicorn server with /healthz; drain() ends it."""

    def __init__(self, settings: ServerSettings, bindings: Sequence[RestBinding]) -> None:
        self.settings = settings
        self.bindings = tuple(bindings)
        self.health = Health(b.name for b in self.bindings)
        self.registration: Registration | None = None
        self._exit_stack = contextlib.AsyncExitStack()
        self._watch: asyncio.Task[None] | None = None
        # Fails here, before any port is bound, when the files are unusable.
        self.tls = None if settings.plaintext else ServerTls(settings)
        policy = None if settings.plaintext else AuthzPolicy.load(settings.authz_policy)
        self.metrics: HttpMetrics | None = None
        if settings.metrics_port >= 0:  # -1 turns metrics off, as on the gRPC side
            self.metrics = HttpMetrics(lambda: self.registration)
        app = build_app(
            self.bindings,
            self.health,
            metrics=self.metrics,
            policy=policy,
            max_concurrent=settings.max_concurrent_rpcs,
            max_body_bytes=settings.max_message_bytes,
        )
        tls = self.tls
        self.config = uvicorn.Config(
            app,
            http=IdentifyingHttpProtocol,
            lifespan="off",
            access_log=False,
            log_config=None,
            server_header=False,
            date_header=False,
            backlog=BACKLOG,
            timeout_graceful_shutdown=settings.grace_seconds,
            ssl_context_factory=None if tls is None else (lambda _config, _default: tls.context),
        )
        self.config.load()
        self.server = uvicorn.Server(self.config)
        self.server.lifespan = self.config.lifespan_class(self.config)
        self.socket = _listen(settings)
        self.port: int = self.socket.getsockname()[1]

    @property
    def address(self) -> str:
        host = self.settings.host
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"

    async def start(self) -> None:
        await self.server.startup(sockets=[self.socket])
        if self.tls is not None:
            self._watch = asyncio.create_task(self.tls.watch())
        self.health.serving = True
        _LOGGER.info(
            "serving %s over HTTP/JSON on %s (%s)",
            ", ".join(b.name for b in self.bindings),
            self.address,
            "plaintext" if self.settings.plaintext else f"mTLS as {self.settings.identity}",
        )
        # Registered only once it serves, so no peer is sent here too early.
        for binding in self.bindings:
            if binding.registry_name:
                self.registration = await self._exit_stack.enter_async_context(
                    registered(self.settings, binding.registry_name, self.port, __version__, "rest")
                )

    async def drain(self, grace_seconds: float | None = None) -> None:
        """NOT_SERVING on /healthz, deregister, then stop within the grace period."""
        grace = self.settings.grace_seconds if grace_seconds is None else grace_seconds
        _LOGGER.info("draining: NOT_SERVING, finishing in-flight requests within %.1f s", grace)
        self.health.serving = False
        await self._exit_stack.aclose()  # out of the registry before requests stop
        self.config.timeout_graceful_shutdown = grace
        stopping = asyncio.create_task(self.server.shutdown(sockets=[self.socket]))
        await asyncio.sleep(0)  # shutdown() closes the listener before its first await
        for binding in self.bindings:
            if binding.on_drain is not None:
                result = binding.on_drain()
                if inspect.isawaitable(result):
                    await result
        await stopping
        for connection in list(self.server.server_state.connections):
            connection.transport.close()  # past the grace period: nothing left to wait for
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        _LOGGER.info("stopped")


@asynccontextmanager
async def serving_rest_server(
    services: RestFactory[S] | Sequence[RestBinding],
    settings: S | ServerSettings | None = None,
) -> AsyncIterator[RestServer]:
    """Runs a REST server in this event loop for the duration of the block; like
    serving_server(), plaintext unless the settings name a `tls_dir`, and
    /metrics only when they name a `metrics_port`."""
    async with serving_in_loop(RestServer, services, settings) as server:
        yield server  # type: ignore[misc]


@asynccontextmanager
async def serving_rest(
    services: RestFactory[S] | Sequence[RestBinding],
    settings: S | ServerSettings | None = None,
) -> AsyncIterator[str]:
    """Like serving_rest_server(), yielding the server's address ("127.0.0.1:port")."""
    async with serving_rest_server(services, settings) as server:
        yield server.address


async def serve_rest(settings: S, factory: RestFactory[S]) -> None:
    """Serves until SIGTERM or SIGINT, then drains gracefully."""
    await serve_until_signalled(RestServer, settings, factory)


def run_rest_worker(settings: S, factory: RestFactory[S]) -> int:
    """Entry point of one serving process: one uvloop event loop (tracing as for
    gRPC, so the two variants' traces compare; build_app adds the HTTP spans)."""
    import uvloop

    return run_worker_process(
        settings, lambda s: serve_rest(s, factory), loop_factory=uvloop.new_event_loop
    )


def run_rest(settings: S, factory: RestFactory[S]) -> int:
    """Serves with `settings.workers` processes; returns the exit code."""
    return run_processes(settings, lambda s: run_rest_worker(s, factory))
