"""The one module that knows aetcd's internals (pinned: aetcd 1.0.0).

aetcd 1.0.0 builds only insecure channels to one host:port and sends no metadata but an
auth token. We subclass its Client to build the channel ourselves (TLS, keepalive pings,
require-leader metadata) and to add the two calls it lacks: a single lease keepalive that
closes its stream, and a prefix watch that delivers into our own callback.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aetcd
import grpc
from aetcd import rpc
from aetcd.utils import prefix_range_end

from discovery.endpoint import split_address

# Channel arguments, each with its reason.
CHANNEL_OPTIONS: dict[str, int] = {
    # An idle watch stream on a member whose host vanished (no RST) would otherwise wait
    # forever; pings notice it in 10 s + 5 s. etcd refuses pings more often than every 5 s
    # (--grpc-keepalive-min-time) with GOAWAY too_many_pings, so 10 s stays above that.
    "grpc.keepalive_time_ms": 10_000,
    "grpc.keepalive_timeout_ms": 5_000,
    # gRPC's own reconnect backoff grows to 120 s; keep it near our 2 s retry cap.
    "grpc.initial_reconnect_backoff_ms": 100,
    "grpc.max_reconnect_backoff_ms": 2_000,
    # A fail-over replaces the channel to get a fresh connection attempt; with gRPC's
    # global subchannel pool the new channel would inherit the old one's connection and
    # its reconnect backoff, and fail for up to that backoff after etcd is back.
    "grpc.use_local_subchannel_pool": 1,
}

# etcd's clientv3.WithRequireLeader: a member that has lost its leader cancels our watch
# and rejects our calls with "no leader" instead of keeping a silent stream open, so we
# move to a member that is still in the quorum.
REQUIRE_LEADER_METADATA = (("hasleader", "true"),)

WatchCallback = Callable[[Any], Awaitable[None]]


class AetcdClient(aetcd.Client):
    """aetcd.Client to one endpoint over a channel we build. Once closed it stays closed,
    so an operation racing a fail-over cannot silently reopen a channel nobody closes."""

    def __init__(
        self, endpoint: str, *, timeout: float, credentials: grpc.ChannelCredentials | None
    ) -> None:
        host, port = split_address(endpoint)
        # aetcd annotates timeout as int but passes it straight to gRPC, which takes floats.
        super().__init__(host=host, port=port, timeout=timeout, options=dict(CHANNEL_OPTIONS))
        self.endpoint = endpoint
        self._credentials = credentials
        self._retired = False

    async def connect(self) -> None:
        # Mirrors aetcd 1.0.0 Client.connect (aetcd/client.py) minus user/password auth.
        # Nothing here awaits, so no other task can observe a half-built client.
        if self._connected.is_set():
            return
        if self._retired:
            raise aetcd.ConnectionFailedError(f"connection to etcd {self.endpoint} was closed")
        options = list(self._options.items())
        if self._credentials is not None:
            self.channel = grpc.aio.secure_channel(self.endpoint, self._credentials, options)
        else:
            self.channel = grpc.aio.insecure_channel(self.endpoint, options)
        self.metadata = REQUIRE_LEADER_METADATA
        self.kvstub = rpc.KVStub(self.channel)
        self.clusterstub = rpc.ClusterStub(self.channel)
        self.leasestub = rpc.LeaseStub(self.channel)
        self.maintenancestub = rpc.MaintenanceStub(self.channel)
        self._watcher = aetcd.Watcher(
            rpc.WatchStub(self.channel), timeout=self._timeout, metadata=self.metadata
        )
        self._connected.set()

    async def close(self) -> None:
        self._retired = True
        await super().close()

    async def keepalive_once(self, lease_id: int) -> int:
        """One LeaseKeepAlive round trip; returns the renewed TTL, 0 if the lease is gone.

        aetcd's refresh_lease returns from inside the stream without closing it; we cancel
        the call so no stream outlives the round trip.
        """
        await self.connect()
        call = self.leasestub.LeaseKeepAlive(
            iter([rpc.LeaseKeepAliveRequest(ID=lease_id)]),
            timeout=self._timeout,
            metadata=self.metadata,
        )
        try:
            reply = await call.read()
        finally:
            call.cancel()
        if reply is grpc.aio.EOF:
            raise aetcd.ConnectionFailedError("lease keepalive stream ended without a reply")
        return int(reply.TTL)

    async def watch_prefix_into(
        self, prefix: bytes, start_revision: int, callback: WatchCallback
    ) -> int:
        """Starts a prefix watch whose events (aetcd.Event), stream error (an exception) or
        shutdown (None) go to `callback`; returns once etcd confirmed it, with its id."""
        await self.connect()
        assert self._watcher is not None
        created = await self._watcher.add_callback(
            prefix, callback, range_end=prefix_range_end(prefix), start_revision=start_revision
        )
        assert created.watch_id is not None
        return int(created.watch_id)

    async def cancel_watch(self, watch_id: int) -> None:
        if self._watcher is not None:
            await self._watcher.cancel(watch_id)
