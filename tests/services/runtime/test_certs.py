"""`make certs`: the local CA, one certificate per identity, private keys 0600."""

from __future__ import annotations

import datetime as dt
import ipaddress
import stat
import subprocess
import sys
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from services.runtime.certs import IDENTITIES, CertificateAuthority, ensure_certs

ROOT = Path(__file__).resolve().parents[3]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_make_certs_issues_every_identity_with_private_keys_0600(tmp_path: Path) -> None:
    out = tmp_path / "certs"
    done = subprocess.run(
        [sys.executable, "-m", "services.runtime.certs", "--out", str(out), "--days", "30"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert set(IDENTITIES) == {"orders", "risk", "matching", "marketdata", "client"}
    assert mode(out) == 0o700
    assert mode(out / "ca-key.pem") == 0o600
    for identity in IDENTITIES:
        assert mode(out / f"{identity}-key.pem") == 0o600
        cert = load(out / f"{identity}.pem")
        cert.verify_directly_issued_by(load(out / "ca.pem"))
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert sans.get_values_for_type(x509.UniformResourceIdentifier) == [
            f"spiffe://trademesh/{identity}"
        ]
        assert sans.get_values_for_type(x509.DNSName) == [f"{identity}.trademesh", "localhost"]
        assert sans.get_values_for_type(x509.IPAddress) == [
            ipaddress.ip_address("127.0.0.1"),
            ipaddress.ip_address("::1"),
        ]
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert set(usages) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
        life = cert.not_valid_after_utc - cert.not_valid_before_utc
        assert dt.timedelta(days=30) <= life <= dt.timedelta(days=30, minutes=10)


def test_the_certs_folder_is_never_committed() -> None:
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "certs/orders-key.pem"], cwd=ROOT, timeout=30
    )
    assert ignored.returncode == 0, "certs/ must stay in .gitignore"


def test_running_again_keeps_current_certificates(tmp_path: Path) -> None:
    assert ensure_certs(tmp_path) == ["ca", *IDENTITIES]
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert ensure_certs(tmp_path) == []
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_stale_or_broken_certificates_are_reissued(tmp_path: Path) -> None:
    ensure_certs(tmp_path)
    now = dt.datetime.now(dt.UTC)
    ca = CertificateAuthority.load(tmp_path)
    # Past two thirds of its life: renewed.
    ca.issue_to(tmp_path, "risk", not_before=now - dt.timedelta(days=9), not_after=now)
    (tmp_path / "matching-key.pem").unlink()
    assert ensure_certs(tmp_path) == ["risk", "matching"]
    assert load(tmp_path / "risk.pem").not_valid_after_utc > now + dt.timedelta(days=80)


def test_force_starts_a_new_ca(tmp_path: Path) -> None:
    ensure_certs(tmp_path)
    old_ca = load(tmp_path / "ca.pem")
    assert ensure_certs(tmp_path, force=True) == ["ca", *IDENTITIES]
    assert load(tmp_path / "ca.pem").serial_number != old_ca.serial_number
    load(tmp_path / "orders.pem").verify_directly_issued_by(load(tmp_path / "ca.pem"))
