"""A serving process's life, the same for the gRPC and the REST runtime.

Each runtime brings its server class (MeshServer, RestServer: start() then
drain()); this module runs one: in a test's event loop for the length of a
block, or as a process that serves until SIGTERM/SIGINT and then drains, with
logging and tracing set up after any fork and the TLS and policy files checked
once before it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol, TypeVar

from clients.tls import TlsError
from services.runtime.authz_policy import AuthzPolicy, PolicyError
from services.runtime.registry import instance_id
from services.runtime.settings import ServerSettings
from services.runtime.telemetry.logs import configure_logging
from services.runtime.telemetry.tracing import configure_tracing, shutdown_tracing
from services.runtime.tls import tls_problem

_LOGGER = logging.getLogger(__name__)

S = TypeVar("S", bound=ServerSettings)
B = TypeVar("B")


class Server(Protocol):
    @property
    def address(self) -> str: ...

    async def start(self) -> None: ...

    async def drain(self, grace_seconds: float | None = None) -> None: ...


# (settings, bindings) -> a server not started yet.
MakeServer = Callable[[Any, Sequence[B]], Server]
Factory = Callable[[S], AbstractAsyncContextManager[Sequence[B]]]


def in_process_settings(settings: S | ServerSettings | None) -> S | ServerSettings:
    """In-process tests serve plaintext unless the settings choose TLS by naming
    a `tls_dir` (processes started with run() serve mTLS unless told
    --plaintext), and serve /metrics only when they name a `metrics_port`."""
    settings = settings or ServerSettings(port=0, plaintext=True)
    if "tls_dir" not in settings.model_fields_set and not settings.plaintext:
        settings = settings.model_copy(update={"plaintext": True})
    if "metrics_port" not in settings.model_fields_set:
        settings = settings.model_copy(update={"metrics_port": -1})
    return settings


@asynccontextmanager
async def serving_in_loop(
    make_server: MakeServer[B],
    services: Factory[S, B] | Sequence[B],
    settings: S | ServerSettings | None,
) -> AsyncIterator[Server]:
    """A server in this event loop for the duration of the block, drained after."""
    settings = in_process_settings(settings)
    async with contextlib.AsyncExitStack() as stack:
        if callable(services):
            bindings = await stack.enter_async_context(services(settings))  # type: ignore[arg-type]
        else:
            bindings = services
        server = make_server(settings, bindings)
        await server.start()
        try:
            yield server
        finally:
            await server.drain(grace_seconds=0.5)


async def serve_until_signalled(
    make_server: MakeServer[B], settings: S, factory: Factory[S, B]
) -> None:
    """Serves until SIGTERM or SIGINT, then drains gracefully."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with factory(settings) as bindings:
        server = make_server(settings, bindings)
        await server.start()
        await stop.wait()
        await server.drain()


def run_worker_process(
    settings: S,
    serve: Callable[[S], Coroutine[Any, Any, None]],
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
) -> int:
    """One serving process: logging and tracing (after any fork, before any server
    or channel exists: tracing patches the grpc.aio constructors), then `serve`."""
    service = settings.service_name
    configure_logging(settings.log_level, settings.log_format, service)
    instance = instance_id(settings, service, settings.port)
    if settings.workers > 1:
        instance = f"{instance}/{os.getpid()}"
    configure_tracing(service, instance, settings.trace_file)
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(serve(settings))
    except (OSError, TlsError, PolicyError) as exc:
        _LOGGER.error("%s", exc)
        return 1
    finally:
        shutdown_tracing()  # exports what is queued (forked workers skip atexit)
    return 0


def run_processes(settings: S, worker: Callable[[S], int]) -> int:
    """Serves with `settings.workers` processes running `worker`; the exit code."""
    configure_logging(settings.log_level, settings.log_format, settings.service_name)
    # Before forking: a missing certificate or policy is one line, not one per worker.
    problem = tls_problem(settings)
    if problem is None and not settings.plaintext:
        try:
            AuthzPolicy.load(settings.authz_policy)
        except PolicyError as exc:
            problem = str(exc)
    if problem is not None:
        _LOGGER.error("%s", problem)
        return 2
    if settings.workers == 1:
        return worker(settings)
    from services.runtime.workers import run_workers

    return run_workers(settings, worker)
