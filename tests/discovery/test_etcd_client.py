"""Our etcd interface against a real etcd: key-values, leases, watch batches, fail-over."""

from __future__ import annotations

import asyncio

import pytest

from discovery import EtcdClient, EtcdConfig, EtcdUnavailable, LocalEtcd, WatchCompacted
from discovery.local_etcd import free_port


async def test_put_get_prefix_delete(client: EtcdClient, prefix: str) -> None:
    first = await client.put(prefix + "a", b"1")
    second = await client.put(prefix + "b", b"2")
    assert second > first
    found = await client.get(prefix + "a")
    assert found is not None and (found.value, found.mod_revision) == (b"1", first)
    snapshot = await client.get_prefix(prefix)
    assert [kv.key for kv in snapshot.kvs] == [prefix + "a", prefix + "b"]
    assert snapshot.revision >= second
    assert await client.delete(prefix + "a") is True
    assert await client.delete(prefix + "a") is False
    assert await client.get(prefix + "a") is None
    assert await client.delete_prefix(prefix) == 1


async def test_lease_keepalive_and_revoke(client: EtcdClient, prefix: str) -> None:
    lease = await client.grant_lease(5)
    await client.put(prefix + "k", b"v", lease=lease)
    assert 0 < await client.keepalive_once(lease) <= 5
    kv = await client.get(prefix + "k")
    assert kv is not None and kv.lease == lease
    await client.revoke_lease(lease)
    assert await client.get(prefix + "k") is None
    assert await client.keepalive_once(lease) == 0  # gone: etcd answers TTL 0, no error


async def test_watch_delivers_changes_in_order_in_batches(client: EtcdClient, prefix: str) -> None:
    start = (await client.get_prefix(prefix)).revision + 1
    async with client.watch_prefix(prefix, start) as stream:
        for i in range(5):
            await client.put(f"{prefix}{i}", str(i).encode())
        await client.delete(prefix + "0")
        seen = []
        async with asyncio.timeout(2):
            async for batch in stream:
                seen += [(event.kind, event.key[len(prefix) :]) for event in batch]
                if len(seen) == 6:
                    break
    assert seen == [*(("put", str(i)) for i in range(5)), ("delete", "0")]


async def test_watch_from_a_compacted_revision_raises(client: EtcdClient, prefix: str) -> None:
    old = await client.put(prefix + "x", b"1")
    latest = await client.put(prefix + "x", b"2")
    await client.compact(latest)
    with pytest.raises(WatchCompacted) as caught:
        async with asyncio.timeout(3), client.watch_prefix(prefix, old) as stream:
            await anext(stream)
    assert caught.value.compact_revision == latest


async def test_a_dead_endpoint_is_skipped(etcd: LocalEtcd, prefix: str) -> None:
    dead = f"127.0.0.1:{free_port()}"
    async with EtcdClient(EtcdConfig((dead, etcd.endpoint))) as client:
        await client.put(prefix + "k", b"v")  # refused by the first, served by the second
        assert client.endpoint == etcd.endpoint


async def test_all_endpoints_dead_raises_unavailable_quickly() -> None:
    dead = ",".join(f"127.0.0.1:{free_port()}" for _ in range(2))
    async with EtcdClient.from_endpoints(dead) as client:
        with pytest.raises(EtcdUnavailable):
            async with asyncio.timeout(3):
                await client.get("/x")


def test_endpoint_lists_parse_like_etcdctl() -> None:
    config = EtcdConfig.from_endpoints("http://127.0.0.1:2379, 127.0.0.1:22379/")
    assert config.endpoints == ("127.0.0.1:2379", "127.0.0.1:22379")
    with pytest.raises(ValueError):
        EtcdConfig.from_endpoints(" , ")
