"""Prometheus metrics of a serving process: per-method RED metrics of the server,
the state of its mesh and of its registration, at /metrics."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from types import SimpleNamespace

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from clients.policy import ServicePolicy
from services.errors import NotFound
from services.launcher import free_port
from services.runtime.interceptors.metrics import MetricsInterceptor
from services.runtime.peers import open_mesh
from services.runtime.server import MeshServer, ServiceBinding, serving_server
from services.runtime.settings import ServerSettings
from services.runtime.telemetry.metrics import ServerMetrics, metrics_port
from services.runtime.workers import _with_metrics_port

SERVICE = "test.Metrics"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def unary(request: bytes, _context: grpc.aio.ServicerContext) -> bytes:
    if request == b"missing":
        raise NotFound("no such order")
    if request == b"bug":
        raise KeyError("a bug")
    if request.startswith(b"sleep"):
        await asyncio.sleep(float(request.removeprefix(b"sleep")))
    return request


async def stream(request: bytes, _context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    yield b"first"
    if request == b"missing":
        raise NotFound("gone")
    yield b"second"


def binding() -> ServiceBinding:
    handler = grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Unary": grpc.unary_unary_rpc_method_handler(unary),
            "Stream": grpc.unary_stream_rpc_method_handler(stream),
        },
    )
    return ServiceBinding(SERVICE, handler, lambda h, s: s.add_generic_rpc_handlers((h,)))


def settings(**kwargs: object) -> ServerSettings:
    return ServerSettings(**{"port": 0, "plaintext": True, **kwargs})  # type: ignore[arg-type]


@pytest.fixture
async def server() -> AsyncIterator[MeshServer]:
    async with serving_server([binding()], settings(metrics_port=free_port())) as running:
        yield running


async def scrape(port: int) -> Samples:
    """GET /metrics from a thread (the server's loop is this one), parsed."""

    def get() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            return answer.read().decode()

    text = await asyncio.to_thread(get)
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def rpc(method: str, **labels: str) -> frozenset[tuple[str, str]]:
    return frozenset({"rpc_service": SERVICE, "rpc_method": method, **labels}.items())


def requests(samples: Samples, method: str, code: int) -> float:
    key = ("rpc_server_requests_total", rpc(method, rpc_grpc_status_code=str(code)))
    return samples.get(key, 0.0)


async def call(channel: grpc.aio.Channel, method: str, request: bytes, **kwargs: object) -> object:
    multicallable = channel.unary_unary(f"/{SERVICE}/{method}")
    try:
        return await multicallable(request, **kwargs)
    except grpc.aio.AioRpcError as exc:
        return exc.code()


async def test_calls_are_counted_by_method_and_final_status(server: MeshServer) -> None:
    async with grpc.aio.insecure_channel(server.address) as channel:
        for request in (b"a", b"b", b"c", b"missing", b"missing", b"bug"):
            await call(channel, "Unary", request)
        assert await call(channel, "Unary", b"sleep5", timeout=0.05) is (
            grpc.StatusCode.DEADLINE_EXCEEDED
        )
        assert [r async for r in channel.unary_stream(f"/{SERVICE}/Stream")(b"ok")] == [
            b"first",
            b"second",
        ]
        with pytest.raises(grpc.aio.AioRpcError):
            async for _ in channel.unary_stream(f"/{SERVICE}/Stream")(b"missing"):
                pass
        await asyncio.sleep(0.05)  # the deadline-exceeded handler ends on the server

    assert server.metrics is not None and server.metrics.port is not None
    samples = await scrape(server.metrics.port)
    assert requests(samples, "Unary", 0) == 3
    assert requests(samples, "Unary", 5) == 2  # NOT_FOUND from a domain error
    assert requests(samples, "Unary", 13) == 1  # INTERNAL: a bug, as the client saw it
    assert requests(samples, "Unary", 4) == 1  # DEADLINE_EXCEEDED
    assert requests(samples, "Stream", 0) == 1
    assert requests(samples, "Stream", 5) == 1
    assert samples["rpc_server_duration_seconds_count", rpc("Unary")] == 7
    assert samples["rpc_server_duration_seconds_bucket", rpc("Unary", le="+Inf")] == 7
    # Six quick calls, one held for its 50 ms deadline.
    assert samples["rpc_server_duration_seconds_bucket", rpc("Unary", le="0.025")] == 6
    assert 0.05 <= samples["rpc_server_duration_seconds_sum", rpc("Unary")] < 1
    assert samples["rpc_server_duration_seconds_count", rpc("Stream")] == 2
    assert samples["rpc_server_active_requests", rpc("Unary")] == 0
    assert samples["rpc_server_active_requests", rpc("Stream")] == 0


async def test_calls_in_flight_and_cancelled(server: MeshServer) -> None:
    assert server.metrics is not None and server.metrics.port is not None
    port = server.metrics.port
    async with grpc.aio.insecure_channel(server.address) as channel:
        held = channel.unary_unary(f"/{SERVICE}/Unary")(b"sleep5")
        for _ in range(100):
            samples = await scrape(port)
            if samples.get(("rpc_server_active_requests", rpc("Unary"))) == 1:
                break
            await asyncio.sleep(0.02)
        else:
            pytest.fail("the call in flight never showed in rpc_server_active_requests")
        held.cancel()
        for _ in range(100):
            samples = await scrape(port)
            if requests(samples, "Unary", 1) == 1:  # CANCELLED
                break
            await asyncio.sleep(0.02)
        else:
            pytest.fail("the cancelled call was not counted as CANCELLED")
    assert samples["rpc_server_active_requests", rpc("Unary")] == 0


async def test_mesh_endpoints_show_after_calls_through_the_mesh(server: MeshServer) -> None:
    assert server.metrics is not None and server.metrics.port is not None
    async with open_mesh(settings(), {"echo": server.address}) as mesh:
        channel = await mesh.channel(ServicePolicy(service="echo"))
        for _ in range(3):
            assert await channel.unary_unary(f"/{SERVICE}/Unary")(b"hi") == b"hi"
        held = asyncio.ensure_future(channel.unary_unary(f"/{SERVICE}/Unary")(b"sleep0.5"))
        await asyncio.sleep(0.1)
        samples = await scrape(server.metrics.port)
        await held

    endpoint = frozenset({"service": "echo", "endpoint": "echo-0"}.items())
    service = frozenset({"service": "echo"}.items())
    assert samples["trademesh_mesh_endpoint_healthy", endpoint] == 1
    assert samples["trademesh_mesh_endpoint_ejected", endpoint] == 0
    assert samples["trademesh_mesh_endpoint_outstanding", endpoint] == 1  # the held call
    assert 0 < samples["trademesh_mesh_endpoint_latency_seconds", endpoint] < 0.5
    assert samples["trademesh_mesh_retries_total", service] == 0
    assert samples["trademesh_mesh_throttled_total", service] == 0
    assert samples["trademesh_mesh_retry_budget_available", service] >= 1
    assert samples["trademesh_mesh_throttle_reject_probability", service] == 0
    assert samples["trademesh_mesh_panic", service] == 0
    # A closed mesh shows nothing.
    after = await scrape(server.metrics.port)
    assert ("trademesh_mesh_endpoint_healthy", endpoint) not in after


def test_registration_state_is_read_at_scrape_time() -> None:
    registration = SimpleNamespace(
        endpoint=SimpleNamespace(service="risk", instance_id="risk-0"),
        registered=False,
        registrations=0,
    )
    metrics = ServerMetrics(lambda: registration)  # type: ignore[arg-type,return-value]
    labels = {"service": "risk", "instance": "risk-0"}
    value = metrics.registry.get_sample_value
    assert value("trademesh_registry_registered", labels) == 0
    registration.registered, registration.registrations = True, 2
    assert value("trademesh_registry_registered", labels) == 1
    assert value("trademesh_registry_registrations_total", labels) == 2
    without = ServerMetrics().registry  # no etcd: no registration
    assert without.get_sample_value("trademesh_registry_registered", labels) is None


async def test_metrics_off_with_minus_one() -> None:
    port = free_port()
    async with serving_server([binding()], settings(port=port, metrics_port=-1)) as server:
        assert server.metrics is None
        with pytest.raises(urllib.error.URLError):
            await asyncio.to_thread(
                urllib.request.urlopen, f"http://127.0.0.1:{port + 1000}/metrics", timeout=1
            )
    async with serving_server([binding()]) as server:  # in-process default: off
        assert server.metrics is None


async def test_a_busy_metrics_port_leaves_the_server_serving(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        with caplog.at_level(logging.ERROR):
            async with serving_server([binding()], settings(metrics_port=taken)) as server:
                assert server.metrics is not None and server.metrics.port is None
                async with grpc.aio.insecure_channel(server.address) as channel:
                    assert await call(channel, "Unary", b"ok") == b"ok"
    assert f"cannot serve /metrics on 127.0.0.1 port {taken}" in caplog.text


def test_metrics_port_defaults_to_the_grpc_port_plus_1000_per_worker() -> None:
    assert metrics_port(settings(), 50051) == 51051
    assert metrics_port(settings(), 50051, worker=2) == 51053
    assert metrics_port(settings(metrics_port=9100), 50051, worker=1) == 9101
    assert metrics_port(settings(metrics_port=-1), 50051) is None
    worker = _with_metrics_port(settings(port=50051), 3)
    assert worker.metrics_port == 51054
    assert _with_metrics_port(settings(port=50051, metrics_port=-1), 3).metrics_port == -1


class _Context:
    """Just what the interceptor reads of a finished call."""

    def code(self) -> None:
        return None

    def time_remaining(self) -> None:
        return None


async def test_per_call_cost_is_a_few_microseconds() -> None:
    """The wrapper's cost on a unary call, measured against the bare behaviour."""

    async def bare(request: bytes, _context: object) -> bytes:
        return request

    wrapped = MetricsInterceptor(ServerMetrics().rpc).wrap_unary_response(bare, "/t.S/M")
    context, calls = _Context(), 20_000

    async def per_call(behavior) -> float:
        best = float("inf")
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(calls):
                await behavior(b"x", context)
            best = min(best, (time.perf_counter() - started) / calls)
        return best

    cost = await per_call(wrapped) - await per_call(bare)
    print(f"metrics interceptor: {cost * 1e6:.2f} µs per call")
    assert cost < 20e-6  # about 2 µs; a generous bound for slow CI machines
