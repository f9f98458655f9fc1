"""ServiceWatcher against a real etcd: load, follow, survive etcd going away and compaction."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from discovery import (
    Endpoint,
    EndpointSet,
    EtcdClient,
    LocalEtcd,
    Registration,
    ServiceWatcher,
)
from discovery.backoff import Backoff
from discovery.etcd_client import PrefixSnapshot

# The brief: a change reaches subscribers "well under a second" after etcd has it.
UPDATE_BUDGET = 0.5


def endpoint(instance: str, port: int = 50051, service: str = "md") -> Endpoint:
    return Endpoint(instance, service, f"127.0.0.1:{port}")


async def put(client: EtcdClient, prefix: str, ep: Endpoint) -> None:
    await client.put(ep.key(prefix), ep.to_value())


async def timed_wait(watcher: ServiceWatcher, predicate: object) -> tuple[EndpointSet, float]:
    started = time.monotonic()
    async with asyncio.timeout(2):
        found = await watcher.wait_for(predicate)  # type: ignore[arg-type]
    return found, time.monotonic() - started


async def test_loads_then_follows_puts_and_deletes_quickly(
    client: EtcdClient, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    await put(client, prefix, endpoint("a", 1))
    await put(client, prefix, endpoint("b", 2))
    await client.put(f"{prefix}md/broken", b'{"address": 7}')
    await put(client, prefix, endpoint("other", 3, service="mdx"))  # a prefix neighbour

    async with ServiceWatcher(client, "md", prefix=prefix) as watcher:
        assert [e.instance_id for e in watcher.current] == ["a", "b"]
        assert "skipping" in caplog.text and "broken" in caplog.text

        await put(client, prefix, endpoint("c", 3))
        found, took_put = await timed_wait(watcher, lambda s: "c" in s)
        assert found.get("c") == endpoint("c", 3)
        assert watcher.connected and watcher.last_error is None

        await client.delete(endpoint("a").key(prefix))
        found, took_delete = await timed_wait(watcher, lambda s: "a" not in s)
        assert [e.instance_id for e in found] == ["b", "c"]

        registration = Registration(client, endpoint("r", 9), prefix=prefix)
        await registration.start()
        _, took_register = await timed_wait(watcher, lambda s: "r" in s)
        await registration.deregister()
        _, took_deregister = await timed_wait(watcher, lambda s: "r" not in s)

    took = [took_put, took_delete, took_register, took_deregister]
    print("update latencies (s):", " ".join(f"{t:.4f}" for t in took))
    assert max(took) < UPDATE_BUDGET


async def test_subscribers_see_each_change_once(client: EtcdClient, prefix: str) -> None:
    async with (
        ServiceWatcher(client, "md", prefix=prefix) as watcher,
        ServiceWatcher(client, "risk", prefix=prefix) as other,  # shares the watch stream
    ):
        seen: list[list[str]] = []
        unsubscribe = watcher.subscribe(lambda s: seen.append(sorted(s.endpoints)))

        await put(client, prefix, endpoint("a"))
        await watcher.wait_for(lambda s: "a" in s)
        await put(client, prefix, endpoint("a"))  # same record again: no change to report
        await client.put(endpoint("a").key(prefix), b"garbage")  # unreadable: drop it
        await watcher.wait_for(lambda s: "a" not in s)
        await put(client, prefix, endpoint("r", service="risk"))
        async with asyncio.timeout(2):
            await other.wait_for(lambda s: "r" in s)
        unsubscribe()
        await put(client, prefix, endpoint("b"))
        await watcher.wait_for(lambda s: "b" in s)
        assert seen == [["a"], []]
        assert "r" not in watcher.current


async def test_updates_iterator_skips_to_the_latest(client: EtcdClient, prefix: str) -> None:
    async with ServiceWatcher(client, "md", prefix=prefix) as watcher:
        updates = watcher.updates()
        assert len(await anext(updates)) == 0
        for port in range(1, 6):
            await put(client, prefix, endpoint(f"i{port}", port))
        await asyncio.sleep(0.2)  # a slow consumer: several changes happen meanwhile
        latest = await anext(updates)
        assert len(latest) == 5
        await updates.aclose()


async def test_keeps_the_last_set_while_etcd_is_down_then_catches_up(
    own_etcd: LocalEtcd, prefix: str
) -> None:
    fast = Backoff(initial=0.05, maximum=0.3)
    async with (
        EtcdClient.from_endpoints(own_etcd.endpoint) as client,
        ServiceWatcher(client, "md", prefix=prefix, backoff=fast) as watcher,
    ):
        await put(client, prefix, endpoint("a", 1))
        await put(client, prefix, endpoint("b", 2))
        before = await watcher.wait_for(lambda s: len(s) == 2)

        await asyncio.to_thread(own_etcd.stop)
        await asyncio.sleep(1.0)
        assert not watcher.connected and watcher.last_error
        assert watcher.current == before  # still served

        # Same data back: the watcher resumes and follows new changes.
        await asyncio.to_thread(own_etcd.start)
        await put(client, prefix, endpoint("c", 3))
        await client.delete(endpoint("a").key(prefix))
        found, took = await timed_wait(watcher, lambda s: sorted(s.endpoints) == ["b", "c"])
        assert watcher.connected and took < 1.0

        # A wiped etcd starts again at revision 1: a reload must still take its word.
        await asyncio.to_thread(own_etcd.stop)
        own_etcd.wipe()
        await asyncio.to_thread(own_etcd.start)
        await put(client, prefix, endpoint("z", 9))
        found, _ = await timed_wait(watcher, lambda s: sorted(s.endpoints) == ["z"])
        assert found.revision < before.revision


class CompactingClient(EtcdClient):
    """Makes the watcher's first load stale by a compaction, as a slow reload racing an
    operator's `etcdctl compact` would: the snapshot is read, then newer changes land and
    history up to them is compacted, so watching from snapshot+1 is no longer possible."""

    raced = False

    async def get_prefix(self, prefix: str) -> PrefixSnapshot:
        snapshot = await super().get_prefix(prefix)
        if not self.raced:
            self.raced = True
            await self.put(prefix + "late", endpoint("late").to_value())
            # Compaction keeps the revision it is given; one more write so that the first
            # revision after the snapshot is really gone.
            await self.compact(await self.put(prefix + "late", endpoint("late").to_value()))
        return snapshot


async def test_a_compacted_watch_reloads(
    etcd: LocalEtcd, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="discovery.resolver")
    async with (
        CompactingClient.from_endpoints(etcd.endpoint) as client,
        ServiceWatcher(client, "md", prefix=prefix) as watcher,
    ):
        assert isinstance(client, CompactingClient) and client.raced
        async with asyncio.timeout(2):
            await watcher.wait_for(lambda s: "late" in s)
        assert "compacted" in caplog.text
        await put(client, prefix, endpoint("after"))
        async with asyncio.timeout(2):
            await watcher.wait_for(lambda s: "after" in s)
