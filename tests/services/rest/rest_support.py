"""Helpers for REST tests: JSON calls with aiohttp, and SSE frames read off a stream."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import orjson


async def call(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    body: Any = None,
    **kwargs: Any,
) -> tuple[int, str, Any]:
    """(status, content type, decoded JSON body or text) of one request."""
    async with session.request(method, url, json=body, **kwargs) as response:
        raw = await response.read()
        content_type = response.headers.get("content-type", "")
        data = orjson.loads(raw) if "json" in content_type else raw.decode()
        return response.status, content_type, data


async def next_event(response: aiohttp.ClientResponse, timeout: float = 5.0) -> tuple[str, Any]:
    """The next SSE frame: (event name, decoded data); ("", None) at end of stream."""
    event, data = "message", []
    async with asyncio.timeout(timeout):
        while True:
            line = await response.content.readline()
            if not line:
                return "", None
            text = line.decode().rstrip("\n")
            if text == "":
                if data:
                    return event, orjson.loads("\n".join(data))
                continue
            name, _, value = text.partition(": ")
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)


def asgi_get(app: Any, path: str, query: str = "") -> Any:
    """Calls the ASGI app directly (no socket): for states where the listener is closed."""

    async def run() -> tuple[int, bytes]:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": [],
            "server": ("127.0.0.1", 0),
            "client": ("127.0.0.1", 0),
            "state": {},
        }
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await app(scope, receive, send)
        body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        return sent[0]["status"], body

    return run()
