"""Puts one instance in etcd under a lease, keeps it there, and takes it out on shutdown.

The key lives as long as the lease: a crashed process stops renewing and etcd deletes
the key one TTL later. A live process that loses its lease (etcd restarted without its
data, the lease revoked, etcd unreachable for longer than the TTL) or its key (deleted by
hand) registers again by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from types import TracebackType

from discovery import _tasks
from discovery.backoff import Backoff
from discovery.endpoint import DEFAULT_PREFIX, Endpoint
from discovery.etcd_client import EtcdClient, EtcdError, LeaseNotFound

log = logging.getLogger(__name__)

# Seconds. A crash is noticed one TTL later, so short (go-zero uses 10 s); etcd rounds
# anything below its minimum (1.5 x election timeout, 2 s with default settings) up.
DEFAULT_TTL = 5
# Renew at TTL/3, as etcd's own clients do: two renewals can fail before the lease does.
KEEPALIVES_PER_TTL = 3
# Check that the key still exists every third renewal (about once per TTL): a key deleted
# by hand comes back within a TTL, at one extra read per TTL per instance.
KEY_CHECK_EVERY = 3


class Registration:
    """One instance's key in etcd, for as long as the context (or start..deregister) lasts.

    `async with Registration(client, endpoint):` registers (waiting up to one TTL for etcd,
    then carrying on in the background) and deregisters on exit. `registered`,
    `last_error` and `registrations` are there for health and metrics.
    """

    def __init__(
        self,
        client: EtcdClient,
        endpoint: Endpoint,
        *,
        ttl: int = DEFAULT_TTL,
        prefix: str = DEFAULT_PREFIX,
        backoff: Backoff | None = None,
    ) -> None:
        if ttl < 1:
            raise ValueError(f"lease ttl {ttl!r} must be at least 1 second")
        self.endpoint = endpoint
        self.ttl = ttl
        self.key = endpoint.key(prefix)
        self._value = endpoint.to_value()
        self._client = client
        self._backoff = backoff or Backoff()
        self._registered = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopped = False
        self._lease_id: int | None = None
        self._last_renewed = 0.0
        self._renewals = 0
        self._failing = False
        self.last_error: str | None = None
        self.registrations = 0  # successful puts of the key, the first one included

    @property
    def registered(self) -> bool:
        return self._registered.is_set()

    @property
    def lease_id(self) -> int | None:
        return self._lease_id

    async def __aenter__(self) -> Registration:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.deregister()

    async def start(self, wait_seconds: float | None = None) -> bool:
        """Starts registering and keeping alive; waits up to `wait_seconds` (default one
        TTL) for the first registration. Returns whether it happened; if not, it keeps
        trying in the background."""
        if self._task is not None:
            raise RuntimeError(f"Registration of {self.key} was already started")
        self._task = _tasks.spawn(self._run(), f"register {self.key}", log)
        wait = self.ttl if wait_seconds is None else wait_seconds
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                await self.wait_registered()
        return self.registered

    async def wait_registered(self) -> None:
        """Returns once the key is in etcd (at once if it is); bound it with asyncio.timeout."""
        await self._registered.wait()

    async def deregister(self) -> None:
        """Deletes the key and revokes the lease now, so clients stop picking this instance
        before it drains. Idempotent; if etcd cannot be reached, the key goes at lease
        expiry instead."""
        if self._stopped:
            return
        self._stopped = True
        await _tasks.stop(self._task)
        lease_id, self._lease_id = self._lease_id, None
        self._registered.clear()
        if lease_id is None:
            return
        try:
            await self._client.delete(self.key)
            await self._client.revoke_lease(lease_id)
        except LeaseNotFound:
            pass  # expired already, and the key with it
        except EtcdError as exc:
            log.warning("%s: not deregistered (%s); it goes in <= %d s", self.key, exc, self.ttl)
            return
        log.info("%s: deregistered", self.key)

    # The loop

    async def _run(self) -> None:
        while True:  # ends when deregister() cancels the task; every path sleeps
            if self._lease_id is None:
                if not await self._register():
                    await asyncio.sleep(self._backoff.next())
                continue
            await asyncio.sleep(self.ttl / KEEPALIVES_PER_TTL)
            await self._keep_alive(self._lease_id)

    async def _register(self) -> bool:
        try:
            lease_id = await self._client.grant_lease(self.ttl)
            # If this put fails the new lease has no key and simply expires.
            await self._client.put(self.key, self._value, lease=lease_id)
        except EtcdError as exc:
            if not self._failing:  # once per run of failures, not once per retry
                self._failing = True
                log.warning("%s: cannot register (%s); retrying", self.key, exc)
            self.last_error = str(exc)
            return False
        self._lease_id = lease_id
        self._last_renewed = time.monotonic()
        self._renewals = 0
        self._failing = False
        self._backoff.reset()
        self.registrations += 1
        self._registered.set()
        log.info(
            "%s: %s %s (lease %x, ttl %d s)",
            self.key,
            "registered" if self.registrations == 1 else "re-registered",
            self.endpoint.address,
            lease_id,
            self.ttl,
        )
        return True

    async def _keep_alive(self, lease_id: int) -> None:
        try:
            remaining = await self._client.keepalive_once(lease_id)
            if remaining <= 0:
                self._lose("lease expired or was revoked")
                return
            self._last_renewed = time.monotonic()
            self._renewals += 1
            if self._renewals % KEY_CHECK_EVERY == 0 and await self._client.get(self.key) is None:
                log.warning("%s: key was deleted; putting it back", self.key)
                await self._client.put(self.key, self._value, lease=lease_id)
                self.registrations += 1
        except LeaseNotFound:
            self._lose("lease expired or was revoked")
            return
        except EtcdError as exc:
            self.last_error = str(exc)
            silent_for = time.monotonic() - self._last_renewed
            if silent_for > self.ttl:
                self._lose(f"no renewal for {silent_for:.1f} s: {exc}")
            elif not self._failing:
                self._failing = True
                log.warning("%s: keepalive failing (%s); retrying", self.key, exc)
            return
        if self._failing:
            self._failing = False
            log.info("%s: keepalive answered again", self.key)

    def _lose(self, reason: str) -> None:
        log.warning("%s: lease lost (%s); registering again", self.key, reason)
        self._lease_id = None
        self._failing = False
        self._registered.clear()
