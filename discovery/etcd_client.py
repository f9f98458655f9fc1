"""Our small etcd interface: the calls discovery needs, our own types and errors, fail-over.

Nothing outside this module, `_aetcd` and `etcd_errors` sees aetcd. Every call goes to the current
endpoint; when it fails for reasons of reachability (refused, timed out, no leader) the
connection is closed and the next endpoint in the list becomes current, and the caller
gets `EtcdUnavailable` so its own retry loop (registry, resolver) decides when to try again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Literal, TypeVar

import aetcd
import grpc

from discovery._aetcd import AetcdClient
from discovery.etcd_config import EtcdConfig
from discovery.etcd_errors import (
    EtcdError,
    EtcdUnavailable,
    LeaseNotFound,
    WatchCompacted,
    timed_out,
    translate,
)

__all__ = [
    "EtcdClient",
    "EtcdError",
    "EtcdUnavailable",
    "KeyValue",
    "LeaseNotFound",
    "PrefixSnapshot",
    "WatchCompacted",
    "WatchEvent",
    "WatchStream",
]

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: str
    value: bytes
    mod_revision: int
    lease: int


@dataclass(frozen=True, slots=True)
class PrefixSnapshot:
    """Every key under a prefix at one revision; watch from `revision + 1` to follow it."""

    kvs: tuple[KeyValue, ...]
    revision: int


@dataclass(frozen=True, slots=True)
class WatchEvent:
    kind: Literal["put", "delete"]
    key: str
    value: bytes  # empty for a delete
    revision: int  # the revision of this change


def _key_value(kv: aetcd.KeyValue) -> KeyValue:
    return KeyValue(kv.key.decode(errors="replace"), kv.value, kv.mod_revision, kv.lease)


class EtcdClient:
    """Connection to an etcd cluster through a list of endpoints; an async context manager."""

    def __init__(self, config: EtcdConfig | None = None) -> None:
        self.config = config or EtcdConfig()
        self._credentials = self.config.tls.credentials() if self.config.tls else None
        self._index = 0
        self._client: AetcdClient | None = None
        self._generation = 0
        self._closed = False

    @classmethod
    def from_endpoints(cls, endpoints: str) -> EtcdClient:
        return cls(EtcdConfig.from_endpoints(endpoints))

    @property
    def endpoint(self) -> str:
        """The endpoint calls go to now."""
        return self.config.endpoints[self._index]

    async def __aenter__(self) -> EtcdClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        self._closed = True
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    def _current(self) -> tuple[AetcdClient, int]:
        if self._closed:
            raise RuntimeError("EtcdClient is closed; create a new one to talk to etcd again")
        if self._client is None:
            self._client = AetcdClient(
                self.endpoint, timeout=self.config.request_timeout, credentials=self._credentials
            )
        return self._client, self._generation

    async def _fail_over(self, generation: int, reason: EtcdError) -> None:
        """Drops the connection that failed and makes the next endpoint current. Only the
        first of several calls failing on the same connection does it."""
        if generation != self._generation or self._closed:
            return
        failed, self._client = self._client, None
        self._generation += 1
        self._index = (self._index + 1) % len(self.config.endpoints)
        # Debug only: the registry and resolver log the state change once, we would log
        # once per retry while etcd is down.
        log.debug("%s; next etcd endpoint: %s", reason, self.endpoint)
        if failed is not None:
            await failed.close()

    async def _call(self, op: Callable[[AetcdClient], Awaitable[T]]) -> T:
        """Runs `op` on the current endpoint. A refused connection moves on to the next
        endpoint at once; a timeout is raised without trying another, so one call never
        waits more than one request timeout. Each endpoint gets one try, plus one for a
        call whose connection another task's fail-over closed under it."""
        attempts = len(self.config.endpoints) + 1
        for attempt in range(1, attempts + 1):
            client, generation = self._current()
            try:
                return await op(client)
            except asyncio.CancelledError:
                # gRPC cancels calls on a channel that is closed; unless it is our own task
                # being cancelled, that was a fail-over: try again on the new connection.
                task = asyncio.current_task()
                if generation == self._generation or (task is not None and task.cancelling()):
                    raise
                if attempt == attempts:
                    raise EtcdUnavailable(f"etcd {client.endpoint}: connection replaced") from None
            except (
                aetcd.ClientError,
                grpc.aio.AioRpcError,
                grpc.aio.UsageError,
                TimeoutError,
            ) as exc:
                error = translate(exc, client.endpoint, replaced=generation != self._generation)
                if not isinstance(error, EtcdUnavailable):
                    raise error from exc
                await self._fail_over(generation, error)
                if timed_out(exc) or attempt == attempts:
                    raise error from exc
        raise AssertionError("unreachable: the loop returns or raises")

    # Key-value

    async def get(self, key: str) -> KeyValue | None:
        found = await self._call(lambda c: c.get(key.encode()))
        return _key_value(found) if found is not None else None

    async def get_prefix(self, prefix: str) -> PrefixSnapshot:
        found = await self._call(lambda c: c.get_prefix(prefix.encode()))
        return PrefixSnapshot(tuple(_key_value(kv) for kv in found), found.header.revision)

    async def put(self, key: str, value: bytes, *, lease: int = 0) -> int:
        """Writes `value` (attached to `lease` unless 0); returns the new revision."""
        done = await self._call(lambda c: c.put(key.encode(), value, lease=lease or None))
        return int(done.header.revision)

    async def delete(self, key: str) -> bool:
        """True if the key existed."""
        return await self._call(lambda c: c.delete(key.encode())) is not None

    async def delete_prefix(self, prefix: str) -> int:
        return int((await self._call(lambda c: c.delete_prefix(prefix.encode()))).deleted)

    async def compact(self, revision: int) -> None:
        """Drops history before `revision` (watches from older revisions then fail)."""
        await self._call(lambda c: c.compact(revision, physical=True))

    # Leases

    async def grant_lease(self, ttl: int) -> int:
        """A new lease; returns its id. etcd raises a TTL below its minimum (about 2 s)."""
        lease = await self._call(lambda c: c.lease(ttl))
        return int(lease.id)

    async def keepalive_once(self, lease_id: int) -> int:
        """Renews the lease once; returns its TTL in seconds, 0 when it no longer exists."""
        return await self._call(lambda c: c.keepalive_once(lease_id))

    async def revoke_lease(self, lease_id: int) -> None:
        """Ends the lease now, deleting every key attached to it."""
        await self._call(lambda c: c.revoke_lease(lease_id))

    # Watch

    def watch_prefix(self, prefix: str, start_revision: int) -> WatchStream:
        """`async with client.watch_prefix(p, rev) as stream: async for batch in stream:`"""
        return WatchStream(self, prefix, start_revision)


class WatchStream:
    """Batches of changes under a prefix, in revision order, from one etcd watch.

    All events that arrived together (one etcd response: a transaction, or a burst) come
    as one batch, so a consumer recomputes its state once per burst, not once per key.
    Iteration ends only by raising: EtcdUnavailable when the stream breaks (the client
    then fails over), WatchCompacted when the start revision is gone.
    """

    def __init__(self, owner: EtcdClient, prefix: str, start_revision: int) -> None:
        self._owner = owner
        self._prefix = prefix
        self._start_revision = start_revision
        # Filled by aetcd's watcher task; unbounded, but drained as fast as etcd sends.
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._client: AetcdClient | None = None
        self._generation = -1
        self._watch_id: int | None = None
        self._ended: EtcdError | None = None

    async def _deliver(self, item: object) -> None:
        self._queue.put_nowait(item)

    async def __aenter__(self) -> WatchStream:
        def start(client: AetcdClient) -> Awaitable[int]:
            self._client, self._generation = client, self._owner._generation
            return client.watch_prefix_into(
                self._prefix.encode(), self._start_revision, self._deliver
            )

        self._watch_id = await self._owner._call(start)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._client is not None and self._watch_id is not None and self._ended is None:
            await self._client.cancel_watch(self._watch_id)

    def __aiter__(self) -> WatchStream:
        return self

    async def __anext__(self) -> list[WatchEvent]:
        if self._ended is not None:
            raise self._ended
        batch: list[WatchEvent] = []
        item = await self._queue.get()
        while True:
            if isinstance(item, aetcd.Event):
                kind: Literal["put", "delete"] = "put" if item.kind == "PUT" else "delete"
                kv = item.kv
                batch.append(
                    WatchEvent(kind, kv.key.decode(errors="replace"), kv.value, kv.mod_revision)
                )
            else:
                self._ended = await self._end(item)
                break
            if self._queue.empty():
                break
            item = self._queue.get_nowait()
        if batch:
            return batch
        assert self._ended is not None
        raise self._ended

    async def _end(self, item: object) -> EtcdError:
        assert self._client is not None
        replaced = self._generation != self._owner._generation
        if item is None:  # aetcd shut its watcher down: the connection was closed
            return EtcdUnavailable(f"etcd {self._client.endpoint}: watch stream closed")
        if not isinstance(item, BaseException):
            return EtcdError(f"etcd {self._client.endpoint}: unexpected watch item {item!r}")
        error = translate(item, self._client.endpoint, replaced)
        if isinstance(error, EtcdUnavailable):
            await self._owner._fail_over(self._generation, error)
        return error
