"""A certificate authority of a test's own: real X.509 client certificates and CRLs, made
with `cryptography`, for the mTLS tests and the identity benchmark."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = dt.datetime.now(dt.UTC)
PEM = serialization.Encoding.PEM


@dataclass(frozen=True)
class TestAuthority:
    """A CA (ECDSA P-256, valid a day either side of now) that signs what a test asks for."""

    __test__ = False  # not a test class, whatever its name says to pytest

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @classmethod
    def create(cls, name: str) -> Self:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - dt.timedelta(days=1))
            .not_valid_after(NOW + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        return cls(cert, key)

    def write(self, path: Path) -> Path:
        """Its certificate as PEM at ``path`` (a ``tls.client_ca_file``)."""
        path.write_bytes(self.cert.public_bytes(PEM))
        return path

    def certificate(
        self,
        name: str,
        *,
        units: tuple[str, ...] = (),
        sans: tuple[x509.GeneralName, ...] = (),
        usage: x509.ObjectIdentifier = ExtendedKeyUsageOID.CLIENT_AUTH,
        not_after: dt.datetime = NOW + dt.timedelta(hours=1),
        serial: int | None = None,
    ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        """A client certificate for CN ``name`` (OUs ``units``) and its key."""
        key = ec.generate_private_key(ec.SECP256R1())
        attributes = [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, u) for u in units]
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, name))
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(attributes))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(serial if serial is not None else x509.random_serial_number())
            .not_valid_before(min(NOW - dt.timedelta(hours=1), not_after - dt.timedelta(hours=1)))
            .not_valid_after(not_after)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), False
            )
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), False)
        return builder.sign(self.key, hashes.SHA256()), key

    def issue(self, directory: Path, name: str, **options: object) -> tuple[Path, Path]:
        """``certificate(name, **options)`` written as PEM files: (certificate, key)."""
        cert, key = self.certificate(name, **options)  # type: ignore[arg-type]
        cert_path, key_path = directory / f"{name}.pem", directory / f"{name}-key.pem"
        cert_path.write_bytes(cert.public_bytes(PEM))
        key_path.write_bytes(
            key.private_bytes(PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )
        return cert_path, key_path

    def crl(
        self,
        *serials: int,
        next_update: dt.datetime | None = None,
        encoding: serialization.Encoding = PEM,
    ) -> bytes:
        """A CRL of this CA revoking ``serials``."""
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.cert.subject)
            .last_update(NOW - dt.timedelta(minutes=1))
            .next_update(next_update or NOW + dt.timedelta(days=1))
        )
        for serial in serials:
            revoked = x509.RevokedCertificateBuilder().serial_number(serial)
            builder = builder.add_revoked_certificate(
                revoked.revocation_date(NOW - dt.timedelta(minutes=1)).build()
            )
        return builder.sign(self.key, hashes.SHA256()).public_bytes(encoding)
