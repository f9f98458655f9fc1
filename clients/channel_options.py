"""The grpc.aio channel arguments every mesh hop uses (named in
grpc/include/grpc/impl/channel_arg_names.h)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import grpc

MiB = 1024 * 1024

# Makes the channel to one endpoint address, with extra channel arguments.
ChannelFactory = Callable[[str, Sequence[tuple[str, Any]]], grpc.aio.Channel]

CHANNEL_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("grpc.max_send_message_length", 4 * MiB),
    ("grpc.max_receive_message_length", 4 * MiB),
    # Ping an idle connection every 30 s so a dead peer is noticed before a call
    # waits on it; servers permit pings every 5 s (services/runtime/server.py).
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    # Reconnect quickly after a peer restarts instead of the default 20 s backoff cap.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 5_000),
    # The mesh retries on its own terms (policy + budget): no hidden retries below it.
    ("grpc.enable_retries", 0),
)


def plaintext_channel(address: str, extra: Sequence[tuple[str, Any]] = ()) -> grpc.aio.Channel:
    """A channel to one endpoint. Create it inside the event loop that uses it:
    grpc.aio channels cannot cross loops (uvicorn#1306)."""
    return grpc.aio.insecure_channel(address, options=[*CHANNEL_OPTIONS, *extra])
