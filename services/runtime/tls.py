"""Server credentials for mutual TLS, reloaded when the certificate files change.

grpc calls the certificate-config fetcher before every new TLS handshake; it
stats the three files and hands grpc a new configuration only when they changed
(and the new key matches the new certificate). Established connections keep the
certificate they were opened with; new ones get the renewed one: no restart, no
dropped call. Client certificates are required and verified against the CA.
"""

from __future__ import annotations

import logging

import grpc

from clients.channel_options import plaintext_channel
from clients.mesh import ChannelFactory
from clients.tls import ReloadingTls, SecureChannels, TlsError, TlsFiles, TlsMaterial
from services.runtime.settings import ServerSettings

_LOGGER = logging.getLogger(__name__)


def tls_files(settings: ServerSettings) -> TlsFiles:
    return TlsFiles.of(settings.tls_dir, settings.identity)


def tls_problem(settings: ServerSettings) -> str | None:
    """One line saying why this process cannot serve, or None when it can."""
    if settings.plaintext:
        return None
    if not settings.identity:
        return "no --identity: name the certificate to serve with, or pass --plaintext"
    try:
        tls_files(settings).load()
    except (OSError, TlsError) as exc:
        return (
            f"no usable TLS certificate for identity {settings.identity!r} in "
            f"{settings.tls_dir} ({exc}): run `make certs`, or pass --plaintext to serve "
            "without TLS (local debugging only)"
        )
    return None


def _configuration(material: TlsMaterial) -> grpc.ServerCertificateConfiguration:
    return grpc.ssl_server_certificate_configuration(
        [(material.key, material.cert)], root_certificates=material.ca
    )


def server_credentials(settings: ServerSettings) -> grpc.ServerCredentials:
    """mTLS credentials as `settings.identity`; raises TlsError (with what to do)
    when the files are not usable."""
    problem = tls_problem(settings)
    if problem is not None:
        raise TlsError(problem)
    tls = ReloadingTls(tls_files(settings))

    def fetch() -> grpc.ServerCertificateConfiguration | None:
        # Runs before every handshake: a few stat() calls unless the files changed.
        try:
            return _configuration(tls.material) if tls.refresh() else None
        except Exception:  # never fail a handshake over a reload: keep the current pair
            _LOGGER.exception("reloading %s failed; serving the current certificate", tls.files)
            return None

    return grpc.dynamic_ssl_server_credentials(
        _configuration(tls.material), fetch, require_client_authentication=True
    )


def mesh_channels(settings: ServerSettings) -> ChannelFactory | SecureChannels:
    """How this process calls its peers: as its own identity over mTLS, or plaintext."""
    if settings.plaintext:
        return plaintext_channel
    return SecureChannels(tls_files(settings))
