"""Client-side mTLS pieces: the files of an identity, reloading them, and the mesh
rebuilding its channels when they are renewed (handshakes: tests/services/runtime)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import grpc
import pytest

from clients.channel_options import plaintext_channel
from clients.mesh import ChannelProvider, Mesh
from clients.static import StaticEndpoints
from clients.tls import ReloadingTls, SecureChannels, TlsError, TlsFiles
from services.runtime.certs import CertificateAuthority, ensure_certs
from tests.clients.conftest import WHO, policy


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    ensure_certs(tmp_path)
    return tmp_path


def test_the_files_of_an_identity(tmp_path: Path) -> None:
    files = TlsFiles.of(tmp_path, "orders")
    assert (files.ca.name, files.cert.name, files.key.name) == (
        "ca.pem",
        "orders.pem",
        "orders-key.pem",
    )
    with pytest.raises(TlsError, match=r"missing .*ca\.pem"):
        files.load()


def test_a_key_of_another_certificate_is_refused(pki: Path) -> None:
    mixed = TlsFiles(pki / "ca.pem", pki / "orders.pem", pki / "risk-key.pem")
    with pytest.raises(TlsError, match=r"risk-key\.pem does not belong to .*orders\.pem"):
        mixed.load()
    with pytest.raises(TlsError):
        SecureChannels(mixed)


def test_a_half_written_rotation_keeps_the_current_pair(pki: Path) -> None:
    tls = ReloadingTls(TlsFiles.of(pki, "client"))
    before = tls.material
    assert not tls.refresh(), "nothing changed"
    cert, _key = CertificateAuthority.load(pki).issue("client")
    (pki / "client.pem").write_bytes(cert)  # the key is still the old one
    assert not tls.refresh() and tls.material == before
    CertificateAuthority.load(pki).issue_to(pki, "client")  # key and certificate match again
    assert tls.refresh() and tls.material != before and tls.generation == 1


async def test_watch_reports_each_renewal_once(pki: Path) -> None:
    channels = SecureChannels(TlsFiles.of(pki, "client"), check_seconds=0.01)
    renewals: list[int] = []
    watching = asyncio.create_task(channels.watch(lambda: renewals.append(channels.generation)))
    await asyncio.sleep(0.05)
    CertificateAuthority.load(pki).issue_to(pki, "client")
    async with asyncio.timeout(2):
        while not renewals:
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    watching.cancel()
    assert renewals == [1]


class ManualChannels:
    """A ChannelProvider whose renewals the test triggers."""

    def __init__(self) -> None:
        self.services: list[str] = []
        self.made = 0
        self.renew: Callable[[], None] | None = None

    def for_service(
        self, service: str
    ) -> Callable[[str, Sequence[tuple[str, Any]]], grpc.aio.Channel]:
        self.services.append(service)

        def channel(address: str, options: Sequence[tuple[str, Any]] = ()) -> grpc.aio.Channel:
            self.made += 1
            return plaintext_channel(address, options)

        return channel

    async def watch(self, on_renewal: Callable[[], None]) -> None:
        self.renew = on_renewal
        await asyncio.Event().wait()


async def test_a_renewal_rebuilds_every_channel_and_spares_calls_in_flight(
    tagged_servers,
) -> None:
    servers = await tagged_servers(2)
    servers[0].behavior.delay = servers[1].behavior.delay = 0.3
    provider = ManualChannels()
    assert isinstance(provider, ChannelProvider)
    source = StaticEndpoints("tagged", [s.address for s in servers])

    async def fixed(_service: str) -> StaticEndpoints:
        return source

    async with Mesh(fixed, channel_factory=provider) as mesh:
        channel = await mesh.channel(policy())
        before = {key: m.channel for key, m in channel.pool.members.items()}
        call = channel.unary_unary(WHO)
        in_flight = asyncio.create_task(call(b""))
        await asyncio.sleep(0.1)
        assert provider.services == ["tagged"] and provider.renew is not None
        provider.renew()

        after = {key: m.channel for key, m in channel.pool.members.items()}
        assert provider.made == 4
        assert after.keys() == before.keys()
        assert all(after[key] is not before[key] for key in after)
        assert (await in_flight).decode() in {"s0", "s1"}, "the old channel finished its call"
        assert (await call(b"")).decode() in {"s0", "s1"}
