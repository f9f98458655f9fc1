"""Mutual TLS for mesh clients: whose files, which server name, and reloading.

Every trademesh certificate carries its identity twice: a SPIFFE URI SAN
(`spiffe://trademesh/risk`, what servers authorize) and a DNS SAN
(`risk.trademesh`, what clients verify). A channel to service X sets
`grpc.ssl_target_name_override` to `X.trademesh`, so the TLS hostname check
accepts only a server holding X's certificate: an endpoint that the registry
(or a mistake) points at another service fails the handshake, even though every
certificate comes from the same CA.

grpc.aio channels cannot swap credentials, so `SecureChannels` re-reads the files
when they change and the mesh (clients/mesh.py) rebuilds each endpoint's channel
with the new ones; calls in flight finish on the old channel.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from clients.channel_options import CHANNEL_OPTIONS, ChannelFactory

_LOGGER = logging.getLogger(__name__)

TRUST_DOMAIN = "trademesh"
SPIFFE_PREFIX = f"spiffe://{TRUST_DOMAIN}/"
# How often a process looks at its certificate files. Renewals happen days before
# expiry (services/runtime/certs.py renews at two thirds of a lifetime), so
# seconds of delay are harmless; a check is three stat() calls.
CHECK_SECONDS = 5.0


class TlsError(Exception):
    """The TLS files are missing or unusable; the message says what to do."""


def spiffe_id(identity: str) -> str:
    return SPIFFE_PREFIX + identity


def server_name(service: str) -> str:
    """The DNS SAN a server of `service` holds, and the name its clients check."""
    return f"{service}.{TRUST_DOMAIN}"


class TlsMaterial(NamedTuple):
    ca: bytes
    cert: bytes
    key: bytes


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """The PEM files of one identity: the CA to trust, its certificate and key."""

    ca: Path
    cert: Path
    key: Path

    @classmethod
    def of(cls, tls_dir: str | os.PathLike[str], identity: str) -> TlsFiles:
        """The layout `make certs` writes: ca.pem, <identity>.pem, <identity>-key.pem."""
        base = Path(tls_dir)
        return cls(base / "ca.pem", base / f"{identity}.pem", base / f"{identity}-key.pem")

    def stamp(self) -> tuple[int, ...]:
        """Changes whenever a file is replaced or rewritten (inode, mtime, size)."""
        stamp: list[int] = []
        for path in (self.ca, self.cert, self.key):
            st = path.stat()
            stamp += (st.st_ino, st.st_mtime_ns, st.st_size)
        return tuple(stamp)

    def load(self) -> TlsMaterial:
        """Reads and checks the three files: the key must belong to the certificate
        (a rotation replaces them one at a time; half done is not usable yet)."""
        missing = [str(p) for p in (self.ca, self.cert, self.key) if not p.is_file()]
        if missing:
            raise TlsError(f"missing {', '.join(missing)}")
        material = TlsMaterial(self.ca.read_bytes(), self.cert.read_bytes(), self.key.read_bytes())
        try:
            cert = x509.load_pem_x509_certificate(material.cert)
            key = serialization.load_pem_private_key(material.key, password=None)
            x509.load_pem_x509_certificates(material.ca)
        except ValueError as exc:
            raise TlsError(f"{self.cert} or its key is not a PEM certificate/key: {exc}") from None
        if key.public_key() != cert.public_key():
            raise TlsError(f"{self.key} does not belong to {self.cert}")
        return material


class ReloadingTls:
    """The newest usable material of `files`. refresh() re-reads them only when
    their stamp changed; unusable files (half rotated) keep the previous material."""

    def __init__(self, files: TlsFiles) -> None:
        self.files = files
        try:  # the stamp first: a change while loading is seen by the next refresh()
            self._stamp = files.stamp()
        except OSError:
            self._stamp = ()
        self.material = files.load()  # fails at start-up, not at the first handshake
        self.generation = 0

    def refresh(self) -> bool:
        """True when new material was loaded."""
        try:
            stamp = self.files.stamp()
        except OSError:  # a file is being replaced: look again next time
            return False
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            material = self.files.load()
        except (OSError, TlsError) as exc:
            _LOGGER.warning("keeping the current TLS files for now: %s", exc)
            return False
        if material == self.material:
            return False
        self.material = material
        self.generation += 1
        _LOGGER.info("loaded renewed TLS certificate %s", self.files.cert)
        return True


class SecureChannels:
    """Mesh channel factories with mutual TLS as one identity, per callee service:

        channels = SecureChannels(TlsFiles.of("certs", "client"))
        mesh = Mesh.from_etcd(config, channel_factory=channels)

    Each channel presents this identity's certificate, trusts the CA, and accepts
    only a server certificate naming the service the mesh meant (`server_name`).
    """

    def __init__(self, files: TlsFiles, *, check_seconds: float = CHECK_SECONDS) -> None:
        self._tls = ReloadingTls(files)
        self.check_seconds = check_seconds
        self._credentials = self._make_credentials()

    @property
    def files(self) -> TlsFiles:
        return self._tls.files

    @property
    def generation(self) -> int:
        """Goes up each time renewed files were loaded."""
        return self._tls.generation

    def _make_credentials(self) -> grpc.ChannelCredentials:
        ca, cert, key = self._tls.material
        return grpc.ssl_channel_credentials(
            root_certificates=ca, private_key=key, certificate_chain=cert
        )

    def credentials(self) -> grpc.ChannelCredentials:
        """The current credentials, re-read first if the files changed."""
        if self._tls.refresh():
            self._credentials = self._make_credentials()
        return self._credentials

    def for_service(self, service: str) -> ChannelFactory:
        """The factory of channels to endpoints of `service` (the registry name)."""
        name = (("grpc.ssl_target_name_override", server_name(service)),)

        def channel(address: str, options: Sequence[tuple[str, Any]] = ()) -> grpc.aio.Channel:
            return grpc.aio.secure_channel(
                address, self.credentials(), options=[*CHANNEL_OPTIONS, *options, *name]
            )

        return channel

    async def watch(self, on_renewal: Callable[[], None]) -> None:
        """Runs until cancelled: calls `on_renewal()` after renewed files were loaded
        (whoever loaded them first), so the caller can rebuild its channels."""
        seen = self.generation
        while True:
            await asyncio.sleep(self.check_seconds)
            self.credentials()
            if self.generation != seen:
                seen = self.generation
                on_renewal()
