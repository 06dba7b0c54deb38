"""Development PKI: a CA, a server certificate and client certificates (``modgate certs init``).

For trying modgate and for tests. Production deployments bring certificates from their own
CA; nothing here is meant to be long-lived: the CA and the server certificate last one
year, client certificates a week by default (``CLIENT_VALIDITY``), since a client
certificate is a credential and this CA publishes no CRL. Private keys are created with
mode 0600 from their first byte (a private temporary file renamed into place), never
written world-readable and tightened afterwards.

Each client certificate names its subject as modgate reads it (``identity.cert_subject_from``,
``gateway/identity/certificates.py``): a subject with ``://`` (a SPIFFE ID) goes into a URI
SAN, anything else into the common name; its groups are organizational units.
"""

import datetime as dt
import ipaddress
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = dt.timedelta(days=365)
CLIENT_VALIDITY = dt.timedelta(days=7)
DEV_CLIENT = "dev-client"
_MAX_CN = 64  # RFC 5280's upper bound for a common name


@dataclass(frozen=True, slots=True)
class ClientSpec:
    """A client certificate to make: ``NAME`` or ``NAME=GROUP,GROUP`` on the command line."""

    subject: str
    groups: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> "ClientSpec":
        subject, _, groups = text.partition("=")
        subject = subject.strip()
        if not subject:
            raise ValueError(f"{text!r}: expected NAME or NAME=GROUP,GROUP")
        return cls(subject, tuple(g.strip() for g in groups.split(",") if g.strip()))

    @property
    def file_stem(self) -> str:
        """``client-<name>``, the name cut to what is safe in a file name."""
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in self.subject)
        return f"client-{safe.strip('._') or 'unnamed'}"


@dataclass(frozen=True, slots=True)
class ClientFiles:
    spec: ClientSpec
    cert: Path
    key: Path


DEFAULT_HOSTS = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True, slots=True)
class DevPki:
    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    clients: tuple[ClientFiles, ...] = ()
    """The named client certificates asked for (``--client``), beside ``dev-client``."""


def _name(common_name: str, units: tuple[str, ...] = ()) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "modgate development"),
            *(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit) for unit in units),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def write_private_file(path: Path, content: bytes) -> None:
    """Write ``content`` to ``path`` readable by its owner only, from the first byte on:
    a new 0600 file beside it, renamed over ``path`` (so an old, looser file is replaced,
    not reused, and no reader ever sees a half-written key)."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(content)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    write_private_file(
        path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _san(hosts: tuple[str, ...]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def _issue(
    subject: str,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_name: x509.Name,
    usage: x509.ObjectIdentifier,
    hosts: tuple[str, ...] = (),
    *,
    units: tuple[str, ...] = (),
    validity: dt.timedelta = VALIDITY,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    uri = "://" in subject
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject.rsplit("/", 1)[-1][:_MAX_CN] if uri else subject, units))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if hosts:
        builder = builder.add_extension(_san(hosts), critical=False)
    elif uri:
        san = x509.SubjectAlternativeName([x509.UniformResourceIdentifier(subject)])
        builder = builder.add_extension(san, critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def init_dev_pki(
    directory: Path,
    hosts: tuple[str, ...] = DEFAULT_HOSTS,
    clients: tuple[ClientSpec, ...] = (),
    client_validity: dt.timedelta = CLIENT_VALIDITY,
) -> DevPki:
    """Write ca.pem, server.pem/server-key.pem, client.pem/client-key.pem (``dev-client``)
    and client-<name>.pem/client-<name>-key.pem for each of ``clients`` into ``directory``."""
    stems = [spec.file_stem for spec in clients]
    if len(set(stems)) != len(stems) or "client-dev-client" in stems:
        raise ValueError("two client certificates would share a file name: name them apart")
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("modgate development CA")
    now = dt.datetime.now(dt.UTC)
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    server_cert, server_key = _issue(
        hosts[0], ca_key, ca_name, ExtendedKeyUsageOID.SERVER_AUTH, hosts
    )
    client_auth = ExtendedKeyUsageOID.CLIENT_AUTH
    client_cert, client_key = _issue(
        DEV_CLIENT, ca_key, ca_name, client_auth, validity=client_validity
    )
    named: list[ClientFiles] = []
    for spec in clients:
        cert, key = _issue(
            spec.subject, ca_key, ca_name, client_auth, units=spec.groups, validity=client_validity
        )
        files = ClientFiles(
            spec, directory / f"{spec.file_stem}.pem", directory / f"{spec.file_stem}-key.pem"
        )
        _write_cert(files.cert, cert)
        _write_key(files.key, key)
        named.append(files)
    pki = DevPki(
        ca_cert=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server-key.pem",
        client_cert=directory / "client.pem",
        client_key=directory / "client-key.pem",
        clients=tuple(named),
    )
    _write_cert(pki.ca_cert, ca_cert)
    _write_cert(pki.server_cert, server_cert)
    _write_key(pki.server_key, server_key)
    _write_cert(pki.client_cert, client_cert)
    _write_key(pki.client_key, client_key)
    return pki
