"""Mutual TLS with real handshakes: who gets in, whom clients accept, rotation."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from grpc_health.v1 import health_pb2, health_pb2_grpc

from clients.mesh import Mesh
from clients.policy import ServicePolicy
from clients.tls import SecureChannels, TlsError, TlsFiles
from discovery import EtcdConfig, EtcdTls, LocalEtcd
from discovery.local_etcd import ServerTls
from services.launcher import free_port
from services.risk.app import RiskSettings
from services.runtime.certs import CertificateAuthority
from services.runtime.server import MeshServer
from tests.services.runtime.tls_support import (
    bytes_method,
    bytes_server_over_tls,
    channel_as,
    make_pki,
    risk_over_tls,
    write_policy,
)
from trading.v1 import risk_pb2, risk_pb2_grpc

ECHO_SERVER = Path(__file__).with_name("echo_server.py")
ACCOUNT = risk_pb2.GetAccountRequest(account_id="alice")
RISK_GET_ACCOUNT = "trading.v1.RiskService/GetAccount"
RISK_RESERVE = "trading.v1.RiskService/Reserve"


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    return make_pki(tmp_path / "certs")


async def health(channel: grpc.aio.Channel) -> int:
    request = health_pb2.HealthCheckRequest(service="trading.v1.RiskService")
    return (await health_pb2_grpc.HealthStub(channel).Check(request, timeout=5)).status


async def refused(channel: grpc.aio.Channel) -> grpc.aio.AioRpcError:
    async with channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await health(channel)
    return caught.value


async def test_a_client_certificate_of_the_mesh_gets_in(pki: Path) -> None:
    async with risk_over_tls(pki) as address, channel_as(pki, "client", address) as channel:
        assert await health(channel) == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.aio.AioRpcError) as caught:  # the service itself answers
            await risk_pb2_grpc.RiskServiceStub(channel).GetAccount(ACCOUNT, timeout=5)
        assert caught.value.code() is grpc.StatusCode.NOT_FOUND


async def test_no_client_certificate_fails_the_handshake(pki: Path) -> None:
    credentials = grpc.ssl_channel_credentials(root_certificates=(pki / "ca.pem").read_bytes())
    override = [("grpc.ssl_target_name_override", "risk.trademesh")]
    async with risk_over_tls(pki) as address:
        error = await refused(grpc.aio.secure_channel(address, credentials, options=override))
    assert error.code() is grpc.StatusCode.UNAVAILABLE


async def test_plaintext_gets_nowhere(pki: Path) -> None:
    async with risk_over_tls(pki) as address:
        error = await refused(grpc.aio.insecure_channel(address))
    assert error.code() is grpc.StatusCode.UNAVAILABLE


async def test_a_certificate_from_another_ca_fails(pki: Path, tmp_path: Path) -> None:
    other = make_pki(tmp_path / "other")
    # Trusts the mesh CA (so only the server's check can fail), presents the other's.
    stranger = TlsFiles(pki / "ca.pem", other / "client.pem", other / "client-key.pem")
    async with risk_over_tls(pki) as address:
        error = await refused(SecureChannels(stranger).for_service("risk")(address, ()))
    assert error.code() is grpc.StatusCode.UNAVAILABLE


async def test_an_expired_certificate_fails(pki: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    CertificateAuthority.load(pki).issue_to(
        pki, "expired", not_before=now - dt.timedelta(days=2), not_after=now - dt.timedelta(days=1)
    )
    async with risk_over_tls(pki) as address:
        error = await refused(channel_as(pki, "expired", address))
    assert error.code() is grpc.StatusCode.UNAVAILABLE


async def test_the_client_refuses_a_server_of_another_service(pki: Path) -> None:
    """Same CA, valid certificate, wrong service: the mesh meant matching, risk answered."""
    async with risk_over_tls(pki) as address:
        error = await refused(channel_as(pki, "client", address, service="matching"))
        async with Mesh.static(
            {"matching": [address]}, channel_factory=SecureChannels(TlsFiles.of(pki, "client"))
        ) as mesh:
            stub = risk_pb2_grpc.RiskServiceStub(await mesh.channel(ServicePolicy("matching")))
            with pytest.raises(grpc.aio.AioRpcError) as through_mesh:
                await stub.GetAccount(ACCOUNT, timeout=2)
    assert error.code() is grpc.StatusCode.UNAVAILABLE
    assert "Hostname Verification" in (error.details() or "")
    assert through_mesh.value.code() is grpc.StatusCode.UNAVAILABLE


def test_plaintext_and_tls_together_are_refused() -> None:
    with pytest.raises(ValueError, match="never both"):
        RiskSettings(plaintext=True, tls_dir=Path("certs"))


def test_the_identity_defaults_to_the_registry_name() -> None:
    assert RiskSettings().identity == "risk"
    assert RiskSettings(identity="risk-eu").identity == "risk-eu"


def test_a_server_without_certificates_says_what_to_do(tmp_path: Path) -> None:
    settings = RiskSettings(port=0, tls_dir=tmp_path)
    with pytest.raises(TlsError, match=r"run `make certs`, or pass --plaintext"):
        MeshServer(settings, [])


def test_a_process_without_certificates_exits_with_one_line(tmp_path: Path) -> None:
    command = [sys.executable, str(ECHO_SERVER), "--tls-dir", str(tmp_path), "--identity", "echo"]
    done = subprocess.run(
        [*command, "--port", str(free_port())], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "run `make certs`, or pass --plaintext" in lines[0], lines


def served_certificate(address: str, pki: Path) -> x509.Certificate:
    """The certificate a new connection is served (Python's ssl as the client)."""
    host, port = address.rsplit(":", 1)
    context = ssl.create_default_context(cafile=pki / "ca.pem")
    context.load_cert_chain(pki / "client.pem", pki / "client-key.pem")
    context.set_alpn_protocols(["h2"])
    with (
        socket.create_connection((host, int(port)), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="risk.trademesh") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


async def peer_certificate(_request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    """Answers with the certificate the caller presented."""
    return context.auth_context()["x509_pem_cert"][0]


async def test_certificates_rotate_under_steady_traffic(pki: Path, tmp_path: Path) -> None:
    """The server's and the client's certificates are replaced (new keys, same CA)
    twice while calls flow: none fails, and new connections use the new ones."""
    policy = write_policy(tmp_path, {"client": ["test.Peer"]})
    binding = bytes_method("test.Peer", "Certificate", peer_certificate)
    ca = CertificateAuthority.load(pki)
    channels = SecureChannels(TlsFiles.of(pki, "client"), check_seconds=0.1)
    async with (
        bytes_server_over_tls(pki, binding, policy) as address,
        Mesh.static({"risk": [address]}, channel_factory=channels) as mesh,
    ):
        channel = await mesh.channel(ServicePolicy("risk"))
        call = channel.unary_unary("/test.Peer/Certificate")
        seen: list[bytes] = []
        failures: list[str] = []

        async def traffic(until: float) -> None:
            while time.monotonic() < until:
                try:
                    seen.append(await call(b"", timeout=2))
                except grpc.aio.AioRpcError as err:
                    failures.append(f"{err.code().name}: {err.details()}")
                await asyncio.sleep(0.002)

        until = time.monotonic() + 2.0
        callers = [asyncio.create_task(traffic(until)) for _ in range(4)]
        for _ in range(2):
            await asyncio.sleep(0.6)
            ca.issue_to(pki, "risk")
            ca.issue_to(pki, "client")
        await asyncio.gather(*callers)

        assert failures == []
        assert len(seen) > 200
        assert channels.generation >= 1
        newest_client = (pki / "client.pem").read_bytes()
        assert seen[-1] == newest_client, "calls now present the renewed client certificate"
        assert len(set(seen)) >= 2
        served = await asyncio.to_thread(served_certificate, address, pki)
        newest_server = x509.load_pem_x509_certificate((pki / "risk.pem").read_bytes())
        assert served.serial_number == newest_server.serial_number


async def test_grpcurl_over_mtls(pki: Path, grpcurl_over_mtls) -> None:
    """The README's grpcurl flags: the client certificate, and -authority for the
    name the server's certificate must hold."""
    client = TlsFiles.of(pki, "client")
    async with risk_over_tls(pki) as address:
        run = grpcurl_over_mtls(client, "risk")
        listed = await run(address, "list")
        assert listed.returncode == 0, listed.stderr
        assert "trading.v1.RiskService" in listed.stdout.split()
        account = await run("-d", '{"account_id":"zed"}', address, RISK_GET_ACCOUNT)
        assert "Code: NotFound" in account.stderr, "reached the service"
        denied = await run("-d", '{"reservation_id":"x"}', address, RISK_RESERVE)
        assert "Code: PermissionDenied" in denied.stderr
        assert "identity 'client' may not call /trading.v1.RiskService/Reserve" in denied.stderr
        impostor = await grpcurl_over_mtls(client, "orders")(address, "list")
        assert impostor.returncode != 0
        assert "not orders.trademesh" in impostor.stderr, impostor.stderr


async def test_discovery_through_an_etcd_that_requires_client_certificates(pki: Path) -> None:
    """--etcd-ca-file/--etcd-cert-file/--etcd-key-file: risk registers in an mTLS
    etcd with its own certificate; a client finds it there and calls it over mTLS."""
    make_pki(pki, identities=["etcd"])  # etcd's own certificate from the same CA
    etcd_tls = ServerTls(str(pki / "etcd.pem"), str(pki / "etcd-key.pem"), str(pki / "ca.pem"))
    client = TlsFiles.of(pki, "client")
    with LocalEtcd(name="runtime-tls", tls=etcd_tls) as etcd:
        settings = {
            "etcd_endpoints": etcd.endpoint,
            "etcd_ca_file": str(pki / "ca.pem"),
            "etcd_cert_file": str(pki / "risk.pem"),
            "etcd_key_file": str(pki / "risk-key.pem"),
        }
        assert RiskSettings(**settings).etcd_config() == EtcdConfig(  # type: ignore[arg-type]
            (etcd.endpoint,),
            EtcdTls(str(pki / "ca.pem"), str(pki / "risk.pem"), str(pki / "risk-key.pem")),
        )
        config = EtcdConfig(
            (etcd.endpoint,), EtcdTls(str(client.ca), str(client.cert), str(client.key))
        )
        async with (
            risk_over_tls(pki, **settings),
            Mesh.from_etcd(config, channel_factory=SecureChannels(client)) as mesh,
        ):
            stub = health_pb2_grpc.HealthStub(await mesh.channel(ServicePolicy("risk")))
            request = health_pb2.HealthCheckRequest(service="trading.v1.RiskService")
            reply = await stub.Check(request, timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
