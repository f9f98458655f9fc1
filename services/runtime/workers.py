"""Several processes serving one port, so one service can use every core.

The parent reserves the port with SO_REUSEPORT and forks the workers before any
gRPC object exists: grpc's threads and completion queues do not survive a fork
(grpc/grpc#16001; grpc examples/python/multiprocessing). Each worker builds its
own server on the same port; the kernel spreads new connections over them.

If a worker dies the parent stops the others and exits non-zero, so the process
supervisor sees one failed service, not a half-capacity one.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from services.runtime.settings import ServerSettings
from services.runtime.telemetry.metrics import metrics_port

_LOGGER = logging.getLogger(__name__)

S = TypeVar("S", bound=ServerSettings)


@contextlib.contextmanager
def reserved_port(host: str, port: int) -> Iterator[int]:
    """Holds the port (binding 0 picks one) so the workers get the same one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
        yield sock.getsockname()[1]
    finally:
        sock.close()


def run_workers(settings: S, worker_main: Callable[[S], int]) -> int:
    ctx = multiprocessing.get_context("fork")
    with reserved_port(settings.host, settings.port) as port:
        worker_settings = settings.model_copy(update={"port": port})
        workers = [
            ctx.Process(
                target=_exit_with,
                args=(worker_main, _with_metrics_port(worker_settings, i)),
                name=f"worker-{i}",
            )
            for i in range(settings.workers)
        ]
        stopping = False

        def forward(signum: int, _frame: object) -> None:
            nonlocal stopping
            stopping = True
            for w in workers:
                if w.pid is not None and w.exitcode is None:
                    os.kill(w.pid, signum)

        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGINT, forward)
        for w in workers:
            w.start()
        _LOGGER.info(
            "%d workers serving %s:%d: pids %s",
            len(workers),
            settings.host,
            port,
            ", ".join(str(w.pid) for w in workers),
        )
        while any(w.exitcode is None for w in workers):
            failed = [w for w in workers if w.exitcode not in (None, 0)]
            if failed and not stopping:
                _LOGGER.error(
                    "worker pid %d exited with %s; stopping the others",
                    failed[0].pid,
                    failed[0].exitcode,
                )
                forward(signal.SIGTERM, None)
            time.sleep(0.1)
        codes = [w.exitcode for w in workers]
    return 0 if all(code == 0 for code in codes) else 1


def _with_metrics_port(settings: S, worker: int) -> S:
    """Each worker serves its own /metrics, on the metrics port + its index."""
    port = metrics_port(settings, settings.port, worker)
    return settings if port is None else settings.model_copy(update={"metrics_port": port})


def _exit_with(worker_main: Callable[[S], int], settings: S) -> None:
    # The parent's handlers forward signals; a worker handles its own in asyncio.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    raise SystemExit(worker_main(settings))
