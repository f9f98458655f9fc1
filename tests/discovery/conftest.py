"""Fixtures for discovery: a real etcd on loopback, a client to it, a fresh key prefix."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest

from discovery import EtcdClient, LocalEtcd


@pytest.fixture(scope="session")
def etcd() -> Iterator[LocalEtcd]:
    """One etcd for the whole session; tests keep apart through their key prefixes.
    Tests that stop or restart etcd use `own_etcd` instead."""
    with LocalEtcd(name="discovery-tests") as server:
        yield server


@pytest.fixture
def own_etcd() -> Iterator[LocalEtcd]:
    """An etcd this test alone may stop, wipe and restart (about 1 s to start)."""
    with LocalEtcd(name="discovery-restart") as server:
        yield server


@pytest.fixture
def prefix() -> str:
    """A key prefix no other test uses, so leftovers never leak between tests."""
    return f"/test-{uuid.uuid4().hex[:12]}/services/"


@pytest.fixture
async def client(etcd: LocalEtcd) -> AsyncIterator[EtcdClient]:
    async with EtcdClient.from_endpoints(etcd.endpoint) as etcd_client:
        yield etcd_client


async def eventually(
    check: Callable[[], Awaitable[bool]], within: float, step: float = 0.02
) -> float:
    """Polls `check` until it is true; returns the seconds it took, fails after `within`."""
    started = time.monotonic()
    while time.monotonic() - started < within:
        if await check():
            return time.monotonic() - started
        await asyncio.sleep(step)
    pytest.fail(f"condition not met within {within} s")
