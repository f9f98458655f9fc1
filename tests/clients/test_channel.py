"""The mesh channel against real servers: balancing, health, ejection, retries, deadlines."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from clients.mesh import Mesh
from clients.static import StaticEndpoints
from services.runtime.server import ServiceBinding, serving
from tests.clients.conftest import WHO, policy


async def who(channel, n: int, **kwargs) -> collections.Counter[str]:
    call = channel.unary_unary(WHO)
    return collections.Counter([(await call(b"", **kwargs)).decode() for _ in range(n)])


async def eventually(predicate, timeout: float = 3.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def mesh_channel(servers, **overrides):
    source = StaticEndpoints("tagged", [s.address for s in servers])

    async def fixed(_service: str):
        return source

    async with Mesh(fixed) as mesh:
        channel = await mesh.channel(policy(**overrides))
        channel.source = source
        yield channel


async def test_round_robin_is_even(tagged_servers) -> None:
    servers = await tagged_servers(3)
    async with mesh_channel(servers, balancer="round_robin") as channel:
        assert await who(channel, 300) == {"s0": 100, "s1": 100, "s2": 100}


async def test_p2c_avoids_a_slow_endpoint(tagged_servers) -> None:
    fast, slow = await tagged_servers(2)
    slow.behavior.delay = 0.05
    async with mesh_channel([fast, slow], balancer="p2c") as channel:
        call = channel.unary_unary(WHO)
        for _ in range(20):  # rounds of 10 concurrent calls
            await asyncio.gather(*(call(b"") for _ in range(10)))
    share = slow.behavior.calls / (slow.behavior.calls + fast.behavior.calls)
    assert share < 0.2, f"slow endpoint got {share:.0%} of the calls"


async def test_ring_hash_keeps_keys_when_an_endpoint_joins(tagged_servers) -> None:
    servers = await tagged_servers(4)
    keys = [f"account-{i}" for i in range(200)]
    async with mesh_channel(servers[:3], balancer="ring_hash", key_of=lambda r: r.decode()) as ch:
        call = ch.unary_unary(WHO)
        before = {k: (await call(k.encode())).decode() for k in keys}
        ch.source.update([s.address for s in servers])
        after = {k: (await call(k.encode())).decode() for k in keys}
    moved = [k for k in keys if before[k] != after[k]]
    assert all(after[k] == "s3" for k in moved), "keys move only to the new endpoint"
    assert 0.1 < len(moved) / len(keys) < 0.45
    assert {after[k] for k in keys} == {"s0", "s1", "s2", "s3"}


async def test_not_serving_endpoint_is_skipped_until_it_serves_again(tagged_servers) -> None:
    a, b = await tagged_servers(2)
    async with mesh_channel([a, b], balancer="round_robin") as channel:
        await eventually(
            lambda: (
                channel.pool.members
                and all(m.health_task is not None for m in channel.pool.members.values())
            )
        )
        await b.set_serving(False)
        await eventually(lambda: len(channel.pool.usable()) == 1)
        assert await who(channel, 20) == {"s0": 20}
        await b.set_serving(True)
        await eventually(lambda: len(channel.pool.usable()) == 2)
        assert await who(channel, 20) == {"s0": 10, "s1": 10}


async def test_failing_endpoint_is_ejected_and_comes_back(tagged_servers) -> None:
    good, bad = await tagged_servers(2)
    bad.behavior.fail_with = grpc.StatusCode.UNAVAILABLE
    async with mesh_channel(
        [good, bad], balancer="round_robin", base_ejection_seconds=0.3, throttle=False
    ) as channel:
        # Every call succeeds: failures on `bad` are retried on `good`.
        assert await who(channel, 20) == {"s0": 20}
        assert channel.pool.outliers.ejected() == {"tagged-1"}
        calls_while_ejected = bad.behavior.calls
        assert await who(channel, 10) == {"s0": 10}
        assert bad.behavior.calls == calls_while_ejected, "no call reaches an ejected endpoint"

        bad.behavior.fail_with = None
        await asyncio.sleep(0.35)
        assert await who(channel, 20) == {"s0": 10, "s1": 10}


async def test_retry_budget_caps_retries_in_an_outage(tagged_servers) -> None:
    (down,) = await tagged_servers(1)
    down.behavior.fail_with = grpc.StatusCode.UNAVAILABLE
    async with mesh_channel(
        [down], throttle=False, retry_min_per_second=0.1, consecutive_failures=10_000
    ) as channel:
        call = channel.unary_unary(WHO)
        failures = 0
        for _ in range(200):
            with pytest.raises(grpc.aio.AioRpcError):
                await call(b"")
            failures += 1
    assert failures == 200
    # 20% of 200 calls, plus the floor of 0.1/s over the 10 s window.
    assert 0 < channel.retries <= 0.2 * 200 + 1
    assert down.behavior.calls == 200 + channel.retries


async def test_throttle_fails_fast_when_the_service_keeps_failing(tagged_servers) -> None:
    (down,) = await tagged_servers(1)
    down.behavior.fail_with = grpc.StatusCode.INTERNAL
    async with mesh_channel([down], consecutive_failures=10_000) as channel:
        call = channel.unary_unary(WHO)
        codes = collections.Counter()
        for _ in range(200):
            try:
                await call(b"")
            except grpc.aio.AioRpcError as err:
                codes[err.code()] += 1
    assert channel.throttled > 0 and codes[grpc.StatusCode.UNAVAILABLE] == channel.throttled
    assert down.behavior.calls < 200, "throttled calls never reach the server"


async def test_no_endpoint_is_unavailable_with_a_clear_message() -> None:
    async with mesh_channel([]) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await channel.unary_unary(WHO)(b"")
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    assert "no endpoint of tagged is registered" in caught.value.details()


async def test_deadline_propagates_across_two_hops(tagged_servers) -> None:
    (back,) = await tagged_servers(1)
    back.behavior.delay = 2.0

    async def front_who(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return await downstream.unary_unary(WHO)(request)  # no timeout given here

    handler = grpc.method_handlers_generic_handler(
        "test.Front", {"Who": grpc.unary_unary_rpc_method_handler(front_who)}
    )
    front = ServiceBinding("test.Front", handler, lambda h, s: s.add_generic_rpc_handlers((h,)))
    async with (
        mesh_channel([back]) as downstream,
        serving([front]) as address,
        grpc.aio.insecure_channel(address) as client,
    ):
        started = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await client.unary_unary("/test.Front/Who")(b"", timeout=0.4)
        elapsed = time.monotonic() - started
    assert caught.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert elapsed < 1.0, "the downstream call must not use its own 2 s default"
    (seen,) = back.behavior.deadlines
    # What was left of the caller's 0.4 s (grpc-timeout rounds up a little), not 2 s.
    assert seen is not None and seen < 0.45, f"downstream saw {seen} s left"


async def test_generated_stub_works_on_a_mesh_channel(tagged_servers) -> None:
    servers = await tagged_servers(2)
    async with mesh_channel(servers, balancer="round_robin") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        reply = await health.Check(health_pb2.HealthCheckRequest(service=""))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        watch = health.Watch(health_pb2.HealthCheckRequest(service=""))
        assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING
        watch.cancel()


async def test_keyed_retry_goes_to_the_new_owner_not_anywhere(tagged_servers) -> None:
    servers = await tagged_servers(3)
    keys = [f"account-{i}" for i in range(60)]
    async with mesh_channel(servers, balancer="ring_hash", key_of=lambda r: r.decode()) as ch:
        call = ch.unary_unary(WHO)
        owners = {k: (await call(k.encode())).decode() for k in keys}
        failing = servers[1]
        failing.behavior.fail_with = grpc.StatusCode.UNAVAILABLE
        await failing.set_serving(False)  # what a dying owner's health stream reports
        after = {k: (await call(k.encode())).decode() for k in keys}
    assert "s1" not in after.values()
    # Keys of the other owners stay put; only s1's keys move.
    assert all(after[k] == owners[k] for k in keys if owners[k] != "s1")
