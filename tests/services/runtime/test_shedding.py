"""Overload fails fast: calls beyond the in-flight limit get RESOURCE_EXHAUSTED."""

from __future__ import annotations

import asyncio
import collections

import grpc

from services.runtime.server import serving
from services.runtime.settings import ServerSettings
from tests.services.runtime.echo_server import echo_binding


async def test_calls_over_the_limit_are_refused_at_once() -> None:
    settings = ServerSettings(port=0, max_concurrent_rpcs=2)
    async with (
        serving([echo_binding()], settings) as address,
        grpc.aio.insecure_channel(address) as channel,
    ):
        slow = channel.unary_unary("/test.Echo/Slow")
        outcomes = await asyncio.gather(
            *(slow(b"300", timeout=5) for _ in range(6)), return_exceptions=True
        )
    results = collections.Counter(
        o.code().name if isinstance(o, grpc.aio.AioRpcError) else o.decode() for o in outcomes
    )
    assert results == {"done": 2, "RESOURCE_EXHAUSTED": 4}
