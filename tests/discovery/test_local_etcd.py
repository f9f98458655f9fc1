"""LocalEtcd and LocalEtcdCluster: real etcd processes, started and stopped by their PID."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from pathlib import Path

import pytest

from discovery import (
    Endpoint,
    EtcdClient,
    EtcdUnavailable,
    LocalEtcd,
    LocalEtcdCluster,
    Registration,
    ServiceWatcher,
)
from discovery.backoff import Backoff
from discovery.local_etcd import find_etcd

ROOT = Path(__file__).resolve().parents[2]


def refuses(endpoint: str) -> bool:
    host, port = endpoint.rsplit(":", 1)
    with socket.socket() as probe:
        return probe.connect_ex((host, int(port))) != 0


def test_binary_is_found() -> None:
    assert os.access(find_etcd(), os.X_OK)
    assert os.access(find_etcd("etcdctl"), os.X_OK)


def test_stop_ends_our_process_and_keeps_the_data(tmp_path: Path) -> None:
    etcd = LocalEtcd(data_dir=tmp_path / "data")
    with etcd:
        pid = etcd.pid
        assert pid is not None and etcd.healthy()
        etcd.stop()
        assert not etcd.running and refuses(etcd.endpoint)
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # reaped: no such process any more
        assert (tmp_path / "data" / "member").is_dir()
    assert (tmp_path / "data").is_dir()  # a data dir we chose is ours to remove


def test_a_busy_port_fails_with_etcds_reason(etcd: LocalEtcd) -> None:
    clash = LocalEtcd(client_port=etcd.client_port)
    try:
        with pytest.raises(RuntimeError, match="already in use"):
            clash.start()
    finally:
        clash.close()


async def test_command_line_runs_etcd_until_sigterm() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "discovery.local_etcd",
        "--client-port=0",
        "--peer-port=0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        async with asyncio.timeout(15):
            line = (await process.stdout.readline()).decode()  # type: ignore[union-attr]
        assert line.startswith("etcd ready at 127.0.0.1:"), line
        endpoint = line.split()[3].rstrip(";")
        async with EtcdClient.from_endpoints(endpoint) as client:
            await client.put("/cli", b"ok")
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(15):
            assert await process.wait() == 0
        assert refuses(endpoint)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_cluster_survives_losing_the_member_we_talk_to(prefix: str) -> None:
    cluster = LocalEtcdCluster(3)
    await asyncio.to_thread(cluster.start)
    try:
        fast = Backoff(initial=0.05, maximum=0.5)
        async with (
            EtcdClient.from_endpoints(cluster.endpoints) as client,
            Registration(
                client, Endpoint("i-1", "md", "127.0.0.1:1"), ttl=3, prefix=prefix, backoff=fast
            ) as registration,
            ServiceWatcher(client, "md", prefix=prefix, backoff=fast) as watcher,
        ):
            assert client.endpoint == cluster.members[0].endpoint
            assert "i-1" in watcher.current
            await asyncio.to_thread(cluster.members[0].kill)
            killed = time.monotonic()

            second = Endpoint("i-2", "md", "127.0.0.1:2")
            async with asyncio.timeout(5):
                while True:  # one call may fail while the others elect a new leader
                    try:
                        await client.put(second.key(prefix), second.to_value())
                        break
                    except EtcdUnavailable:
                        await asyncio.sleep(0.1)
                await watcher.wait_for(lambda s: "i-2" in s)
            print(f"watcher caught up {time.monotonic() - killed:.2f} s after the kill")
            assert client.endpoint != cluster.members[0].endpoint

            await asyncio.sleep(3.5)  # longer than the TTL: renewals went to another member
            kv = await client.get(registration.key)
            assert registration.registered and kv is not None and kv.lease == registration.lease_id
            print(f"registrations: {registration.registrations} (1: the lease survived)")
            assert "i-1" in watcher.current
    finally:
        await asyncio.to_thread(cluster.close)
