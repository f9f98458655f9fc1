"""grpc.aio channels to a fixed address, with the mesh's channel options.

For a hop to one known address (a CLI, a test); service-to-service hops go
through the mesh channel (clients/), which uses the same options per endpoint.
"""

from __future__ import annotations

import grpc

from clients.channel_options import CHANNEL_OPTIONS, plaintext_channel

__all__ = ["CHANNEL_OPTIONS", "open_channel"]


def open_channel(target: str) -> grpc.aio.Channel:
    """A plaintext channel to `target` ("host:port"), made in the running loop."""
    return plaintext_channel(target)
