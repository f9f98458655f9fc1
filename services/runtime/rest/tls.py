"""Mutual TLS for the REST variant, from the same files as the gRPC side.

The server presents `<identity>.pem`, requires a client certificate signed by the
mesh CA (ssl.CERT_REQUIRED) and reloads renewed files without a restart: an
SSLContext's certificate can be replaced in place, and only new handshakes use it.
The caller's identity is read once per connection (identity.py) for authorization.
"""

from __future__ import annotations

import asyncio
import logging
import ssl

from clients.tls import CHECK_SECONDS, SPIFFE_PREFIX, ReloadingTls, TlsError, TlsFiles
from services.runtime.settings import ServerSettings
from services.runtime.tls import tls_files, tls_problem

_LOGGER = logging.getLogger(__name__)


def _load(context: ssl.SSLContext, tls: ReloadingTls) -> None:
    context.load_cert_chain(tls.files.cert, tls.files.key)
    context.load_verify_locations(cadata=tls.material.ca.decode())


class ServerTls:
    """The server's SSLContext, kept current with its files by watch()."""

    def __init__(self, settings: ServerSettings) -> None:
        problem = tls_problem(settings)
        if problem is not None:
            raise TlsError(problem)
        self._tls = ReloadingTls(tls_files(settings))
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.context.verify_mode = ssl.CERT_REQUIRED
        self.context.set_alpn_protocols(["http/1.1"])
        _load(self.context, self._tls)

    async def watch(self, check_seconds: float = CHECK_SECONDS) -> None:
        """Runs until cancelled, loading renewed files into the context."""
        while True:
            await asyncio.sleep(check_seconds)
            if self._tls.refresh():
                try:
                    _load(self.context, self._tls)
                except (OSError, ssl.SSLError):  # replaced again meanwhile: next round
                    _LOGGER.exception("reloading %s failed; serving the current one", self._tls)


def client_context(files: TlsFiles) -> ssl.SSLContext:
    """A client SSLContext presenting `files`' certificate and trusting the mesh CA.
    Callers verify the server by name: `server_hostname=server_name(service)`."""
    material = files.load()
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=material.ca.decode())
    context.load_cert_chain(files.cert, files.key)
    return context


def identity_of(peercert: dict | None) -> str | None:
    """The mesh identity ("orders") of a verified peer certificate, from its one
    spiffe://trademesh/ URI SAN (as grpc's peer_spiffe_id), else None."""
    if not peercert:
        return None
    uris = [value for kind, value in peercert.get("subjectAltName", ()) if kind == "URI"]
    if len(uris) != 1 or not uris[0].startswith(SPIFFE_PREFIX):
        return None
    return uris[0].removeprefix(SPIFFE_PREFIX)
