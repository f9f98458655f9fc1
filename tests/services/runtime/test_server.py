"""The runtime as a process: health, graceful drain, workers sharing a port."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.launcher import free_port, wait_serving

ECHO_SERVER = Path(__file__).with_name("echo_server.py")
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def start_echo(port: int, *args: str, capture: bool = False) -> subprocess.Popen[bytes]:
    """Starts the echo server; its output is kept only when the test reads it."""
    command = [sys.executable, str(ECHO_SERVER), "--port", str(port), *args]
    output = subprocess.PIPE if capture else subprocess.DEVNULL
    return subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)


@pytest.fixture
def echo_process() -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    process = start_echo(port, "--grace-seconds", "5")
    try:
        wait_serving(f"127.0.0.1:{port}", "test.Echo", timeout=20)
        yield process, f"127.0.0.1:{port}"
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def children_of(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


async def test_drain_finishes_in_flight_calls_and_reports_not_serving(echo_process) -> None:
    process, address = echo_process
    async with grpc.aio.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        watch = health.Watch(health_pb2.HealthCheckRequest(service="test.Echo"))
        assert (await watch.read()).status == SERVING
        in_flight = asyncio.ensure_future(channel.unary_unary("/test.Echo/Slow")(b"1500"))
        await asyncio.sleep(0.3)  # the slow call is now inside the server

        process.send_signal(signal.SIGTERM)
        assert (await watch.read()).status == NOT_SERVING
        assert await in_flight == b"done", "an in-flight call must finish during the drain"

    exit_code = await asyncio.to_thread(process.wait, 10)
    assert exit_code == 0
    async with grpc.aio.insecure_channel(address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await channel.unary_unary("/test.Echo/Whoami")(b"", timeout=1)
        assert caught.value.code() is grpc.StatusCode.UNAVAILABLE


async def test_second_server_on_the_same_port_fails_loudly(echo_process) -> None:
    _, address = echo_process
    port = address.rsplit(":", 1)[1]
    clash = start_echo(int(port), capture=True)
    output, _ = await asyncio.to_thread(clash.communicate, timeout=20)
    assert clash.returncode == 1
    assert b"cannot listen on 127.0.0.1:" + port.encode() in output


async def test_workers_share_one_port() -> None:
    port = free_port()
    parent = start_echo(port, "--workers", "2", "--grace-seconds", "2")
    address = f"127.0.0.1:{port}"
    try:
        await asyncio.to_thread(wait_serving, address, "test.Echo", 20)
        workers = children_of(parent.pid)
        assert len(workers) == 2
        served_by: set[int] = set()
        # Each new channel is a new connection; the kernel spreads them over the workers.
        for _ in range(60):
            async with grpc.aio.insecure_channel(address) as channel:
                pid = await channel.unary_unary("/test.Echo/Whoami")(b"", timeout=5)
                served_by.add(int(pid))
            if served_by == workers:
                break
        assert served_by == workers

        parent.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(parent.wait, 15) == 0
        deadline = time.monotonic() + 5
        while any(Path(f"/proc/{pid}").exists() for pid in workers) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert not any(Path(f"/proc/{pid}/stat").exists() for pid in workers)
    finally:
        if parent.poll() is None:
            parent.kill()
        parent.wait()
