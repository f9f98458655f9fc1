"""Server-Sent Events: a server stream as `data: <json>\\n\\n` frames.

A stream that ends with a domain error (a slow subscriber dropped with
RESOURCE_EXHAUSTED, say) cannot change its 200 status any more, so it ends with
one `event: error` frame whose data is the problem document; the gRPC variant
ends the same stream with that status.

The response holds the stream's subscription (a context manager) for its whole
life, so the subscription is left however the response ends, even when the
client goes away before the first frame (a generator that never started cannot
clean up). Items may be ready frames, encoded once by a publisher for every
subscriber (market data).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable
from contextlib import AbstractContextManager
from typing import Any, TypeVar

import orjson
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from services.errors import DomainError
from services.runtime.rest.problems import error_body

T = TypeVar("T")

MEDIA_TYPE = "text/event-stream"
# Proxies must not buffer a stream, nor clients cache it.
HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def frame(data: Any) -> bytes:
    return b"data: " + orjson.dumps(data) + b"\n\n"


def error_frame(err: DomainError) -> bytes:
    return b"event: error\ndata: " + orjson.dumps(error_body(err)) + b"\n\n"


async def frames(
    items: AsyncIterable[T], encode: Callable[[T], bytes] | None = None
) -> AsyncIterator[bytes]:
    """`items` as frames (`encode`d, or frames already), ending with an error
    frame if they end with a DomainError (the gRPC stream's final status)."""
    try:
        if encode is None:
            async for item in items:
                yield item  # type: ignore[misc]
        else:
            async for item in items:
                yield encode(item)
    except DomainError as err:
        yield error_frame(err)


class EventStreamResponse(StreamingResponse):
    """text/event-stream of `body`, holding `subscription` until the response ends."""

    media_type = MEDIA_TYPE

    def __init__(
        self, body: AsyncIterable[bytes], subscription: AbstractContextManager[object]
    ) -> None:
        super().__init__(body, headers=HEADERS)
        self._subscription = subscription

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        with self._subscription:
            await super().__call__(scope, receive, send)
