"""Mutual TLS to etcd: aetcd has none, our channel adds it (certificates made by openssl)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from discovery import EtcdClient, EtcdConfig, EtcdTls, EtcdUnavailable, LocalEtcd
from discovery.local_etcd import ServerTls


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def issue(name: str, cwd: Path, extensions: str) -> None:
    """A P-256 key and a one-day certificate for `name`, signed by ca.pem."""
    openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=cwd,
    )  # fmt: skip
    (cwd / f"{name}.ext").write_text(extensions)
    openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "1", "-out", f"{name}.pem", "-extfile", f"{name}.ext",
        cwd=cwd,
    )  # fmt: skip


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make test certificates")
    cwd = tmp_path_factory.mktemp("pki")
    openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=test-ca", cwd=cwd,
    )  # fmt: skip
    issue("etcd", cwd, "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n")
    issue("client", cwd, "extendedKeyUsage=clientAuth\n")
    return cwd


@pytest.fixture(scope="module")
def tls_etcd(pki: Path) -> Iterator[LocalEtcd]:
    tls = ServerTls(str(pki / "etcd.pem"), str(pki / "etcd.key"), str(pki / "ca.pem"))
    with LocalEtcd(name="discovery-tls", tls=tls) as server:
        yield server


async def test_mutual_tls_round_trip(tls_etcd: LocalEtcd, pki: Path) -> None:
    tls = EtcdTls(str(pki / "ca.pem"), str(pki / "client.pem"), str(pki / "client.key"))
    async with EtcdClient(EtcdConfig((tls_etcd.endpoint,), tls=tls)) as client:
        await client.put("/tls/k", b"v")
        found = await client.get("/tls/k")
        assert found is not None and found.value == b"v"


async def test_no_client_certificate_is_refused(tls_etcd: LocalEtcd, pki: Path) -> None:
    tls = EtcdTls(str(pki / "ca.pem"))
    async with EtcdClient(EtcdConfig((tls_etcd.endpoint,), tls=tls)) as client:
        with pytest.raises(EtcdUnavailable):
            await client.get("/tls/k")


def test_half_a_client_certificate_fails_early() -> None:
    with pytest.raises(ValueError, match="both cert_file and key_file"):
        EtcdTls(cert_file="client.pem")
