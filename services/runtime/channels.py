"""grpc.aio channels to a fixed address, with the mesh's channel options.

Service-to-service hops use these until discovery provides endpoints; the options
are the same either way.
"""

from __future__ import annotations

import grpc

from services.runtime.settings import MiB

# Named grpc channel arguments (grpc/include/grpc/impl/channel_arg_names.h).
CHANNEL_OPTIONS: tuple[tuple[str, int], ...] = (
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
)


def open_channel(target: str) -> grpc.aio.Channel:
    """A plaintext channel to `target` ("host:port"). Must be created inside the
    event loop that uses it: grpc.aio channels cannot cross loops (uvicorn#1306)."""
    return grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS)
