"""A local CA and one certificate per mesh identity, for mutual TLS (`make certs`).

    python -m services.runtime.certs --out certs [--days 90] [--force]

Writes ca.pem and ca-key.pem, then <identity>.pem and <identity>-key.pem for each
service (orders, risk, matching, marketdata) and for external clients (`client`).
Each certificate names its identity as a SPIFFE URI SAN (what servers authorize)
and as the DNS SAN `<identity>.trademesh` (what clients verify, clients/tls.py),
plus localhost/127.0.0.1/::1 so loopback tools can connect. Keys are P-256 (cheap
handshakes) and written 0600; the folder is git-ignored and nothing here is ever
committed.

Idempotent: a certificate that verifies against the CA, names its identity and
has more than a third of its life left is kept; others are re-issued, so running
this on a schedule renews certificates, and running servers and clients pick the
new files up without a restart. Files are replaced atomically (write, rename).
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from clients.tls import TlsError, TlsFiles, server_name, spiffe_id

SERVICE_IDENTITIES = ("orders", "risk", "matching", "marketdata")
CLIENT_IDENTITY = "client"
IDENTITIES = (*SERVICE_IDENTITIES, CLIENT_IDENTITY)
DEFAULT_DAYS = 90
CA_DAYS = 3650
# Backdated against clock skew between the machines of a mesh.
_BACKDATE = dt.timedelta(minutes=5)
_LOOPBACK_NAMES = ("localhost",)
_LOOPBACK_IPS = ("127.0.0.1", "::1")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def write_atomically(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Readers (servers reloading their files) see the old file or the new one."""
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)  # also when the file existed with laxer permissions
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(temporary, path)


@dataclass(frozen=True)
class CertificateAuthority:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @classmethod
    def create(cls, days: int = CA_DAYS, name: str = "trademesh local CA") -> CertificateAuthority:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        return cls(key, cert)

    @classmethod
    def load(cls, out: Path) -> CertificateAuthority:
        cert = x509.load_pem_x509_certificate((out / "ca.pem").read_bytes())
        key = serialization.load_pem_private_key((out / "ca-key.pem").read_bytes(), None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise TlsError(f"{out / 'ca-key.pem'} is not an EC key")
        return cls(key, cert)

    def save(self, out: Path) -> None:
        write_atomically(out / "ca-key.pem", _key_pem(self.key), 0o600)
        write_atomically(out / "ca.pem", self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(
        self,
        identity: str,
        *,
        days: int = DEFAULT_DAYS,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
    ) -> tuple[bytes, bytes]:
        """A new key and certificate for `identity`: (certificate PEM, key PEM)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        start = not_before or now - _BACKDATE
        end = not_after or now + dt.timedelta(days=days)
        names: list[x509.GeneralName] = [
            x509.UniformResourceIdentifier(spiffe_id(identity)),
            x509.DNSName(server_name(identity)),
            *(x509.DNSName(name) for name in _LOOPBACK_NAMES),
            *(x509.IPAddress(ipaddress.ip_address(ip)) for ip in _LOOPBACK_IPS),
        ]
        cert = (
            x509.CertificateBuilder()
            .subject_name(
                x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, server_name(identity))])
            )
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            # Every service is both: it serves, and it calls its peers.
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), False
            )
            .sign(self.key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)

    def issue_to(
        self,
        out: Path,
        identity: str,
        *,
        days: int = DEFAULT_DAYS,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
    ) -> TlsFiles:
        """Issues and writes <identity>.pem and <identity>-key.pem (0600) into `out`.
        The key goes first: a reader that sees the new certificate before the new
        key finds them mismatched and keeps its current pair (clients/tls.py)."""
        cert, key = self.issue(identity, days=days, not_before=not_before, not_after=not_after)
        files = TlsFiles.of(out, identity)
        write_atomically(files.key, key, 0o600)
        write_atomically(files.cert, cert)
        return files


def _fresh(cert: x509.Certificate, now: dt.datetime) -> bool:
    """More than a third of its lifetime left."""
    life = cert.not_valid_after_utc - cert.not_valid_before_utc
    return cert.not_valid_after_utc - now > life / 3


def is_current(ca: CertificateAuthority, files: TlsFiles, identity: str) -> bool:
    """Whether `files` hold a usable, fresh certificate of `identity` from `ca`."""
    try:
        files.load()
        cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
        cert.verify_directly_issued_by(ca.cert)
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, TlsError, ValueError, TypeError, x509.ExtensionNotFound):
        return False
    uris = sans.get_values_for_type(x509.UniformResourceIdentifier)
    return spiffe_id(identity) in uris and _fresh(cert, _now())


def ensure_certs(
    out: Path,
    *,
    days: int = DEFAULT_DAYS,
    identities: Sequence[str] = IDENTITIES,
    force: bool = False,
) -> list[str]:
    """Makes `out` hold a CA and a current certificate per identity; returns what
    was (re-)issued ("ca" first if the CA was)."""
    out.mkdir(parents=True, exist_ok=True)
    out.chmod(0o700)
    issued: list[str] = []
    ca: CertificateAuthority | None = None
    if not force:
        try:
            ca = CertificateAuthority.load(out)
            if not _fresh(ca.cert, _now()):
                ca = None
        except (OSError, ValueError, TlsError):
            ca = None
    if ca is None:
        ca = CertificateAuthority.create()
        ca.save(out)
        issued.append("ca")
        force = True  # certificates of an older CA are useless now
    for identity in identities:
        if force or not is_current(ca, TlsFiles.of(out, identity), identity):
            ca.issue_to(out, identity, days=days)
            issued.append(identity)
    return issued


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("certs"), help="folder (git-ignored)")
    parser.add_argument("--days", type=int, default=DEFAULT_DAYS, help="certificate lifetime")
    parser.add_argument("--force", action="store_true", help="new CA and certificates")
    args = parser.parse_args(argv)
    if args.days < 1:
        parser.error("--days must be at least 1")
    issued = ensure_certs(args.out, days=args.days, force=args.force)
    kept = [i for i in IDENTITIES if i not in issued]
    print(
        f"{args.out}: issued {', '.join(issued) or 'nothing'}"
        + (f"; kept {', '.join(kept)}" if kept else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
