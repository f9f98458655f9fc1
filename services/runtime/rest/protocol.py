"""uvicorn's httptools protocol, telling the app who is calling.

uvicorn puts no TLS details in the ASGI scope, so this subclass reads the
caller's certificate identity once per connection (after the handshake, in
connection_made) and adds it to every request's scope as
`scope["extensions"]["trademesh.identity"]` (None on plaintext or without one).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from services.runtime.rest.tls import identity_of

IDENTITY = "trademesh.identity"


class IdentifyingHttpProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        peercert = transport.get_extra_info("peercert") if self.scheme == "https" else None
        self._extensions: dict[str, Any] = {IDENTITY: identity_of(peercert)}

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.scope["extensions"] = self._extensions  # type: ignore[typeddict-unknown-key]


def peer_identity(scope: dict[str, Any]) -> str | None:
    extensions = scope.get("extensions")
    return extensions.get(IDENTITY) if extensions else None
