"""A verified client certificate's identity, by the documented mapping; the TLS context that
asks for one; and the ASGI TLS extension the app reads it from."""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.certs import init_dev_pki
from gateway.errors import ConfigError, IdentityError
from gateway.http.tls import server_context, tls_extension
from gateway.identity.base import Identity
from gateway.identity.certificates import CertificateIdentifier, certificate_subject
from gateway.identity.proof import RequestProof
from gateway.settings import CERT_SUBJECT_SOURCES, TlsSettings

NOW = dt.datetime.now(dt.UTC)
SPIFFE = "spiffe://corp.example/ns/ci/sa/builder"


def certificate(
    cn: str | None = "build-01",
    units: tuple[str, ...] = (),
    sans: tuple[x509.GeneralName, ...] = (),
    not_after: dt.datetime = NOW + dt.timedelta(hours=1),
) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    attributes = [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, u) for u in units]
    if cn is not None:
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    name = x509.Name(attributes)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_after - dt.timedelta(days=1))
        .not_valid_after(not_after)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


EVERY_SAN = (
    x509.RFC822Name("builder@corp.example"),
    x509.DNSName("builder.corp.example"),
    x509.UniformResourceIdentifier(SPIFFE),
)


@pytest.mark.parametrize(
    ("order", "subject"),
    [
        (CERT_SUBJECT_SOURCES, SPIFFE),  # the default: URI, DNS, e-mail, CN
        (("dns", "uri"), "builder.corp.example"),
        (("email",), "builder@corp.example"),
        (("cn", "uri"), "build-01"),
    ],
)
def test_the_first_source_in_the_operators_order_names_the_subject(
    order: tuple[str, ...], subject: str
) -> None:
    found = certificate_subject(certificate(sans=EVERY_SAN), order)
    assert (found.identity.subject, found.identity.groups, found.identity.method) == (
        subject,
        (),
        "mtls",
    )


def test_the_details_name_the_serial_and_the_issuer() -> None:
    found = certificate_subject(certificate(sans=EVERY_SAN), ("cn",))
    serial = f"{found.certificate.serial_number:x}"
    assert dict(found.identity.details) == {"serial": serial, "issuer": "CN=test CA"}


def test_a_missing_source_falls_through_to_the_next() -> None:
    found = certificate_subject(certificate(sans=(x509.DNSName("a.corp.example"),)), ("uri", "dns"))
    assert found.identity.subject == "a.corp.example"


def test_groups_are_the_organizational_units_in_order_once_each() -> None:
    der = certificate(units=("developers", "ci", "developers"))
    assert certificate_subject(der, ("cn",)).identity.groups == ("developers", "ci")


def test_a_certificate_naming_no_one_by_the_order_is_refused() -> None:
    with pytest.raises(IdentityError, match="names no subject by uri, dns") as caught:
        certificate_subject(
            certificate(cn=None, sans=(x509.RFC822Name("x@corp.example"),)), ("uri", "dns")
        )
    assert caught.value.status == 401


def identify(identifier: CertificateIdentifier, *chain: bytes) -> Identity | None:
    return asyncio.run(identifier.identify(RequestProof((), "127.0.0.1", chain)))


def test_without_a_certificate_the_identifier_gives_way() -> None:
    assert identify(CertificateIdentifier(CERT_SUBJECT_SOURCES)) is None


def test_a_certificate_expired_since_the_handshake_is_refused() -> None:
    """A kept-alive connection can outlive its certificate: expiry is checked per request."""
    identifier = CertificateIdentifier(CERT_SUBJECT_SOURCES)
    with pytest.raises(IdentityError, match="client certificate expired at"):
        identify(identifier, certificate(not_after=NOW - dt.timedelta(seconds=1)))
    fresh = identify(identifier, certificate(cn="fresh"))
    assert fresh is not None and (fresh.subject, fresh.method) == ("fresh", "mtls")


def tls_settings(tmp_path: Path, **changes: str) -> TlsSettings:
    pki = init_dev_pki(tmp_path / "pki")
    return TlsSettings(cert_file=str(pki.server_cert), key_file=str(pki.server_key), **changes)


@pytest.mark.parametrize(
    ("mode", "verify"),
    [("none", ssl.CERT_NONE), ("optional", ssl.CERT_OPTIONAL), ("required", ssl.CERT_REQUIRED)],
)
def test_the_context_asks_for_client_certificates_as_configured(
    tmp_path: Path, mode: str, verify: ssl.VerifyMode
) -> None:
    ca = str(tmp_path / "pki" / "ca.pem") if mode != "none" else ""
    context = server_context(tls_settings(tmp_path, client_cert=mode, client_ca_file=ca))
    assert context.verify_mode == verify
    assert len(context.get_ca_certs()) == (0 if mode == "none" else 1)


def test_a_client_ca_file_holding_no_ca_is_refused(tmp_path: Path) -> None:
    settings = tls_settings(tmp_path, client_cert="required")
    leaf_only = tmp_path / "pki" / "client.pem"  # a certificate, but no CA
    with pytest.raises(ConfigError, match="holds no CA certificate"):
        server_context(TlsSettings(settings.cert_file, settings.key_file, client_cert="required",
                                   client_ca_file=str(leaf_only)))  # fmt: skip


def test_a_client_ca_file_that_is_not_pem_is_refused(tmp_path: Path) -> None:
    settings = tls_settings(tmp_path)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    with pytest.raises(ConfigError, match="not a PEM bundle of CA certificates"):
        server_context(TlsSettings(settings.cert_file, settings.key_file, client_cert="optional",
                                   client_ca_file=str(garbage)))  # fmt: skip


def handshake(server: ssl.SSLContext, client: ssl.SSLContext) -> ssl.SSLObject:
    """A real TLS handshake through memory buffers; the server's end of it."""
    s_in, s_out, c_in, c_out = (ssl.MemoryBIO() for _ in range(4))
    server_end = server.wrap_bio(s_in, s_out, server_side=True)
    client_end = client.wrap_bio(c_in, c_out, server_hostname="localhost")
    done = {"server": False, "client": False}
    for _ in range(10):
        for name, end in (("client", client_end), ("server", server_end)):
            if not done[name]:
                try:
                    end.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            return server_end
    raise AssertionError("the handshake did not finish")


def test_the_tls_extension_carries_the_verified_leaf_the_version_and_the_suite(
    tmp_path: Path,
) -> None:
    settings = tls_settings(
        tmp_path, client_cert="required", client_ca_file=str(tmp_path / "pki" / "ca.pem")
    )
    client = ssl.create_default_context(cafile=str(tmp_path / "pki" / "ca.pem"))
    client.load_cert_chain(tmp_path / "pki" / "client.pem", tmp_path / "pki" / "client-key.pem")
    extension = tls_extension(handshake(server_context(settings), client))
    assert extension is not None
    leaf = (tmp_path / "pki" / "client.pem").read_text()
    assert extension["client_cert_chain"] == [
        ssl.DER_cert_to_PEM_cert(ssl.PEM_cert_to_DER_cert(leaf))
    ]
    assert extension["client_cert_name"] == "CN=dev-client,O=modgate development"
    assert extension["client_cert_error"] is None and extension["server_cert"] is None
    assert extension["tls_version"] == 0x0304
    assert extension["cipher_suite"] in {0x1301, 0x1302, 0x1303}  # the TLS 1.3 AEAD suites


def test_without_tls_there_is_no_extension() -> None:
    assert tls_extension(None) is None
