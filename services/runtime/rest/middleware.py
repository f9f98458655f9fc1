"""The REST server's ASGI wrappers around the FastAPI app (pure ASGI: cheap).

- LoadShedding: past `max_concurrent` requests in flight (streams included), new
  ones get 429 with the overloaded problem type at once, which REST clients treat
  as "try another instance" (problems.error_from_problem), like gRPC's
  maximum_concurrent_rpcs. Probes (/healthz, /metrics) are never shed.
- HandledErrors: FastAPI's catch-all handler has already logged an unexpected
  exception (with its reference id) and sent the 500 problem, then re-raises so
  servers can log it; this stops the re-raise so the traceback is logged once.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from services.runtime.rest.problems import OVERLOADED_TYPE, problem

PROBES = frozenset({"/healthz", "/metrics"})
# Set in the scope by the catch-all handler once it has logged and answered.
HANDLED = "trademesh.error_handled"


class LoadShedding:
    def __init__(self, app: ASGIApp, max_concurrent: int) -> None:
        self.app = app
        self.max_concurrent = max_concurrent
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PROBES:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_concurrent:
            shed = problem(
                "RESOURCE_EXHAUSTED",
                f"overloaded: {self.in_flight} requests in flight; retry on another instance",
                problem_type=OVERLOADED_TYPE,
                headers={"retry-after": "1"},
            )
            await shed(scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


class HandledErrors:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except Exception:
            if not scope.get(HANDLED):  # not answered: the server answers 500 and logs it
                raise
