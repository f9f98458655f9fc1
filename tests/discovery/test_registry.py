"""Registration against a real etcd: visible, kept alive, restored, removed."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from discovery import Endpoint, EtcdClient, LocalEtcd, Registration
from discovery.backoff import Backoff

from .conftest import eventually

ROOT = Path(__file__).resolve().parents[2]
HELPER = Path(__file__).with_name("register_helper.py")
# The smallest TTL etcd grants with default settings; keeps the expiry tests short.
TTL = 2


def endpoint(instance: str = "i-1") -> Endpoint:
    return Endpoint(instance, "risk", "127.0.0.1:50051", zone="z1", weight=7, version="v1")


async def test_registered_key_carries_the_value_under_a_lease(
    client: EtcdClient, prefix: str
) -> None:
    async with Registration(client, endpoint(), prefix=prefix) as registration:
        assert registration.registered and registration.registrations == 1
        kv = await client.get(f"{prefix}risk/i-1")
        assert kv is not None and kv.lease == registration.lease_id
        assert json.loads(kv.value) == {
            "address": "127.0.0.1:50051",
            "protocol": "grpc",
            "zone": "z1",
            "weight": 7,
            "version": "v1",
        }


async def test_graceful_deregistration_removes_the_key_at_once(
    client: EtcdClient, prefix: str
) -> None:
    registration = Registration(client, endpoint(), prefix=prefix)
    assert await registration.start()
    lease = registration.lease_id
    assert lease is not None
    await registration.deregister()
    assert await client.get(registration.key) is None
    assert await client.keepalive_once(lease) == 0  # the lease is revoked too
    assert not registration.registered
    await registration.deregister()  # idempotent


async def test_key_expires_after_the_process_is_killed(
    etcd: LocalEtcd, client: EtcdClient, prefix: str
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(HELPER),
        etcd.endpoint,
        prefix,
        "risk",
        "doomed",
        str(TTL),
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        async with asyncio.timeout(10):
            line = await process.stdout.readline()  # type: ignore[union-attr]
        assert line.startswith(b"registered"), line
        assert await client.get(f"{prefix}risk/doomed") is not None
        process.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        await process.wait()

        async def gone() -> bool:
            return await client.get(f"{prefix}risk/doomed") is None

        # etcd checks for expired leases every 500 ms: TTL + 1 s is the bound.
        await eventually(gone, within=TTL + 1.0)
        assert time.monotonic() - killed <= TTL + 1.0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_keepalive_holds_the_key_and_puts_a_deleted_one_back(
    client: EtcdClient, prefix: str
) -> None:
    async with Registration(client, endpoint(), ttl=TTL, prefix=prefix) as registration:
        await asyncio.sleep(TTL * 1.25)
        kv = await client.get(registration.key)
        assert kv is not None and kv.lease == registration.lease_id
        assert registration.registrations == 1

        await client.delete(registration.key)

        async def back() -> bool:
            return await client.get(registration.key) is not None

        await eventually(back, within=TTL + 1.0)  # checked once per TTL
        assert registration.registered


async def test_a_revoked_lease_is_replaced(client: EtcdClient, prefix: str) -> None:
    async with Registration(client, endpoint(), ttl=TTL, prefix=prefix) as registration:
        first = registration.lease_id
        assert first is not None
        await client.revoke_lease(first)  # deletes the key, as an expiry would

        async def replaced() -> bool:
            kv = await client.get(registration.key)
            return kv is not None and kv.lease not in (0, first)

        await eventually(replaced, within=TTL)  # noticed at the next renewal (TTL/3)
        assert registration.registrations == 2 and registration.lease_id != first


@pytest.mark.parametrize("wipe", [False, True], ids=["same-data", "fresh-data"])
async def test_comes_back_after_etcd_restarts(own_etcd: LocalEtcd, prefix: str, wipe: bool) -> None:
    fast = Backoff(initial=0.05, maximum=0.5)
    async with (
        EtcdClient.from_endpoints(own_etcd.endpoint) as client,
        Registration(client, endpoint(), ttl=TTL, prefix=prefix, backoff=fast) as registration,
    ):
        await asyncio.to_thread(own_etcd.stop)
        # Down for longer than the TTL: the lease must be given up as lost.
        await asyncio.sleep(TTL + 1.0)
        assert not registration.registered and registration.last_error
        if wipe:
            own_etcd.wipe()
        await asyncio.to_thread(own_etcd.start)

        async def back() -> bool:
            # With its data back etcd also restores the old key and lease for a while;
            # what matters is that the key is ours again under a live lease.
            kv = await client.get(registration.key)
            return registration.registered and kv is not None and kv.lease == registration.lease_id

        took = await eventually(back, within=3.0)
        assert registration.registrations == 2
        print(f"key back {took:.2f} s after etcd answered again (wipe={wipe})")


async def test_start_does_not_fail_while_etcd_is_down(own_etcd: LocalEtcd, prefix: str) -> None:
    own_etcd.stop()
    fast = Backoff(initial=0.05, maximum=0.3)
    async with EtcdClient.from_endpoints(own_etcd.endpoint) as client:
        registration = Registration(client, endpoint(), ttl=TTL, prefix=prefix, backoff=fast)
        assert await registration.start(wait_seconds=0.3) is False
        assert registration.last_error
        await asyncio.to_thread(own_etcd.start)
        async with asyncio.timeout(3):
            await registration.wait_registered()
        await registration.deregister()
        assert await client.get(registration.key) is None
