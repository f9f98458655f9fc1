"""Follows one service's endpoints in etcd and hands out immutable snapshots of them.

The loop: read the whole prefix (the set and its revision), watch from revision + 1,
apply each batch of changes. Whenever the watch breaks (etcd down, member lost, watch
compacted) it reloads and watches again, with capped backoff while etcd is unreachable.
The last known set is kept and served all that time: stale endpoints are better than no
endpoints, and the channel's health checks skip the ones that are really gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Callable, Iterable
from types import TracebackType

from discovery import _tasks
from discovery.backoff import Backoff
from discovery.endpoint import (
    DEFAULT_PREFIX,
    Endpoint,
    EndpointDecodeError,
    service_prefix,
    split_key,
)
from discovery.endpoint_set import EndpointSet
from discovery.etcd_client import EtcdClient, EtcdError, KeyValue, WatchCompacted, WatchEvent

log = logging.getLogger(__name__)

# How long start() waits for the first load before returning with an empty set; the
# watcher keeps trying in the background either way.
START_WAIT = 5.0

Subscriber = Callable[[EndpointSet], None]


class ServiceWatcher:
    """Live `EndpointSet` of one service. Use `async with`, or start() and close().

    Consumers read `current`, iterate `updates()`, or `subscribe()` a callback; all three
    see a new set within milliseconds of the change in etcd.
    """

    def __init__(
        self,
        client: EtcdClient,
        service: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        backoff: Backoff | None = None,
    ) -> None:
        self.service = service
        self._client = client
        self._prefix = prefix
        self._key_prefix = service_prefix(service, prefix)
        self._backoff = backoff or Backoff()
        self._current = EndpointSet(service)
        self._subscribers: list[Subscriber] = []
        self._changed = asyncio.Event()
        self._following = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.connected = False
        self.last_error: str | None = None

    @property
    def current(self) -> EndpointSet:
        return self._current

    async def __aenter__(self) -> ServiceWatcher:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self, wait_seconds: float = START_WAIT) -> bool:
        """Starts following etcd; waits up to `wait_seconds` until the first load is done
        and the watch is on. Returns whether that happened (if not, it keeps trying, and
        `current` stays empty until etcd answers)."""
        if self._task is not None:
            raise RuntimeError(f"ServiceWatcher({self.service!r}) was already started")
        self._task = _tasks.spawn(self._run(), f"watch {self._key_prefix}", log)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait_seconds):
                await self._following.wait()
        return self._following.is_set()

    async def close(self) -> None:
        self._closed = True
        await _tasks.stop(self._task)
        self._changed.set()  # wakes updates() iterators so they end

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Calls `callback(new_set)` on every change (in the watcher's task: keep it quick).
        Returns the function that unsubscribes."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    async def updates(self) -> AsyncGenerator[EndpointSet, None]:
        """The current set now, then each new one. A slow consumer skips to the latest set
        rather than queueing stale ones. Ends when the watcher closes."""
        while not self._closed:
            changed = self._changed  # taken before yielding so no change is missed
            yield self._current
            await changed.wait()

    async def wait_for(self, predicate: Callable[[EndpointSet], bool]) -> EndpointSet:
        """The first set (current included) that satisfies `predicate`, e.g.
        `async with asyncio.timeout(2): await watcher.wait_for(lambda s: len(s) > 0)`."""
        async with contextlib.aclosing(self.updates()) as sets:
            async for endpoint_set in sets:
                if predicate(endpoint_set):
                    return endpoint_set
        raise RuntimeError(f"ServiceWatcher({self.service!r}) closed while waiting")

    # The loop

    async def _run(self) -> None:
        while True:  # ends when close() cancels the task; every failure path sleeps
            try:
                snapshot = await self._client.get_prefix(self._key_prefix)
                self._publish(self._decode(snapshot.kvs), snapshot.revision)
                async with self._client.watch_prefix(
                    self._key_prefix, snapshot.revision + 1
                ) as stream:
                    self._set_connected(None)
                    self._following.set()
                    async for batch in stream:
                        self._apply(batch)
            except WatchCompacted as exc:
                # Our revision is gone from history; a reload reads a newer one. No sleep:
                # this is not etcd failing, and the next watch starts at the head.
                log.info("%s: %s; reloading", self._key_prefix, exc)
            except EtcdError as exc:
                self._set_connected(exc)
                await asyncio.sleep(self._backoff.next())

    def _set_connected(self, error: EtcdError | None) -> None:
        """One log line per change between watching and not, never one per retry."""
        if error is None:
            self._backoff.reset()
            if not self.connected:
                log.info(
                    "%s: watching at %s (%d endpoints)",
                    self._key_prefix,
                    self._client.endpoint,
                    len(self._current),
                )
            self.connected = True
            return
        if self.connected or self.last_error is None:  # a change, or the first failure
            log.warning(
                "%s: etcd unreachable (%s); serving the last %d endpoints and retrying",
                self._key_prefix,
                error,
                len(self._current),
            )
        self.connected = False
        self.last_error = str(error)

    def _decode(self, kvs: Iterable[KeyValue]) -> list[Endpoint]:
        decoded = (self._endpoint(kv.key, kv.value) for kv in kvs)
        return [endpoint for endpoint in decoded if endpoint is not None]

    def _endpoint(self, key: str, value: bytes) -> Endpoint | None:
        """The endpoint stored under `key`, or None (logged) when the record is bad: one
        bad writer must not take the whole service out of discovery."""
        try:
            service, instance_id = split_key(key, self._prefix)
            return Endpoint.from_value(service, instance_id, value)
        except EndpointDecodeError as exc:
            log.warning("%s: skipping %s: %s", self._key_prefix, key, exc)
            return None

    def _apply(self, batch: list[WatchEvent]) -> None:
        endpoints = dict(self._current.endpoints)
        for event in batch:
            endpoint = self._endpoint(event.key, event.value) if event.kind == "put" else None
            if endpoint is not None:
                endpoints[endpoint.instance_id] = endpoint
            else:  # a delete, or a put of a bad record: either way not usable
                with contextlib.suppress(EndpointDecodeError):
                    endpoints.pop(split_key(event.key, self._prefix)[1], None)
        self._publish(endpoints.values(), batch[-1].revision)

    def _publish(self, endpoints: Iterable[Endpoint], revision: int) -> None:
        new = EndpointSet.of(self.service, endpoints, revision)
        changed = new != self._current
        self._current = new
        if not changed:
            return  # same endpoints at a newer revision (e.g. an identical re-put)
        self._changed.set()
        self._changed = asyncio.Event()
        for callback in list(self._subscribers):
            try:
                callback(new)
            except Exception:
                log.exception("%s: subscriber %r failed", self._key_prefix, callback)
