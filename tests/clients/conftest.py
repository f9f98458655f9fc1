"""Fixtures for the client half of the mesh: a fake clock for the pure pieces, and
real grpc.aio servers on loopback that say who answered."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc
import pytest
from grpc_health.v1 import health_pb2

from clients.policy import ServicePolicy
from services.runtime.server import MeshServer, ServiceBinding, serving_server

SERVICE = "test.Tagged"
WHO = f"/{SERVICE}/Who"


@dataclass
class Behavior:
    """What a tagged server does with a call; tests change it while it runs."""

    delay: float = 0.0
    fail_with: grpc.StatusCode | None = None
    calls: int = 0
    deadlines: list[float | None] = field(default_factory=list)


@dataclass
class Tagged:
    name: str
    server: MeshServer
    behavior: Behavior

    @property
    def address(self) -> str:
        return self.server.address

    async def set_serving(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else (health_pb2.HealthCheckResponse.NOT_SERVING)
        )
        await self.server.health.set(SERVICE, status)


def tagged_binding(name: str, behavior: Behavior) -> ServiceBinding:
    async def who(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        behavior.calls += 1
        behavior.deadlines.append(context.time_remaining())
        if behavior.delay:
            await asyncio.sleep(behavior.delay)
        if behavior.fail_with is not None:
            await context.abort(behavior.fail_with, f"{name} fails on purpose")
        return name.encode()

    handler = grpc.method_handlers_generic_handler(
        SERVICE, {"Who": grpc.unary_unary_rpc_method_handler(who)}
    )
    return ServiceBinding(SERVICE, handler, lambda h, server: server.add_generic_rpc_handlers((h,)))


class FakeClock:
    """A monotonic clock tests move by hand, so time-based behaviour is tested
    without sleeping."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def tagged_servers() -> AsyncIterator:
    """`await start(n)` starts n more servers named s0, s1, ...; all stop at the end."""
    async with contextlib.AsyncExitStack() as stack:
        started: list[Tagged] = []

        async def start(count: int) -> list[Tagged]:
            fresh = []
            for _ in range(count):
                name = f"s{len(started)}"
                behavior = Behavior()
                server = await stack.enter_async_context(
                    serving_server([tagged_binding(name, behavior)])
                )
                fresh.append(Tagged(name, server, behavior))
                started.append(fresh[-1])
            return fresh

        yield start


def policy(**overrides: object) -> ServicePolicy:
    settings: dict[str, object] = {"service": "tagged", "health_service": SERVICE}
    settings.update(overrides)
    return ServicePolicy(**settings)  # type: ignore[arg-type]
