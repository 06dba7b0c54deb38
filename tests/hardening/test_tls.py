"""TLS on the client-facing port: TLS 1.2 at least, TLS 1.3 preferred, and in TLS 1.2 only
AEAD suites with forward secrecy (ECDHE with AES-GCM or ChaCha20-Poly1305).

Each case is a real `openssl s_client` handshake against `modgate serve`: once with the
development PKI's ECDSA P-256 certificate and once with an RSA certificate, because which
suites can be negotiated at all depends on the key type.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from gateway.certs import DevPki
from tests.conftest import gateway_env
from tests.support.gateway import GatewayProcess
from tests.support.opa import OpaServer
from tests.support.postgres import ThrowawayPostgres
from tests.support.upstream import UpstreamServer

pytestmark = [pytest.mark.postgres, pytest.mark.opa]


@dataclass(frozen=True)
class Handshake:
    succeeded: bool
    protocol: str
    cipher: str
    output: str


def s_client(port: int, *options: str, stdin: str = "") -> Handshake:
    """One `openssl s_client` handshake with ``options``; what was negotiated, if anything."""
    done = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-brief", *options],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    output = done.stdout + done.stderr
    fields = {}
    for line in output.splitlines():
        name, _, value = line.partition(":")
        fields[name.strip()] = value.strip()
    protocol = fields.get("Protocol version", "")
    cipher = fields.get("Ciphersuite", "")
    succeeded = done.returncode == 0 and "CONNECTION ESTABLISHED" in output
    return Handshake(succeeded, protocol, cipher, output)


def rsa_server_pair(directory: Path) -> tuple[Path, Path]:
    """A self-signed RSA 2048 server certificate for 127.0.0.1 (s_client does not verify)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "modgate rsa test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "rsa.pem", directory / "rsa-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@pytest.fixture(scope="module")
def rsa_gateway(
    tmp_path_factory: pytest.TempPathFactory,
    pki: DevPki,
    postgres: ThrowawayPostgres,
    opa_server: OpaServer,
    public_upstream: UpstreamServer,
) -> Iterator[GatewayProcess]:
    work = tmp_path_factory.mktemp("rsa-gateway")
    cert_file, key_file = rsa_server_pair(work)
    env = gateway_env(pki, postgres, opa_server.url, public_upstream.url, "")
    env["MODGATE_TLS_CERT_FILE"], env["MODGATE_TLS_KEY_FILE"] = str(cert_file), str(key_file)
    with GatewayProcess(env, cert_file, work / "modgate.log") as process:
        yield process


# The TLS 1.1 client must be allowed to offer TLS 1.1 at all: OpenSSL 3's default security
# level 2 refuses it on the client side before the server is asked.
OLD_CLIENT = "DEFAULT@SECLEVEL=0"


def test_tls_1_1_is_refused(gateway: GatewayProcess) -> None:
    handshake = s_client(gateway.port, "-tls1_1", "-cipher", OLD_CLIENT)
    assert not handshake.succeeded, handshake.output


@pytest.mark.parametrize(
    "suite",
    [
        "ECDHE-ECDSA-AES256-SHA384",  # CBC with HMAC, the suite the attack report named
        "ECDHE-ECDSA-AES128-SHA256",
        "ECDHE-ECDSA-AES256-SHA",
        "AES128-SHA256",  # CBC and no forward secrecy
        "AES128-GCM-SHA256",  # AEAD but static RSA key exchange: no forward secrecy
    ],
)
def test_tls_1_2_refuses_suites_without_aead_or_forward_secrecy(
    gateway: GatewayProcess, suite: str
) -> None:
    handshake = s_client(gateway.port, "-tls1_2", "-cipher", f"{suite}@SECLEVEL=0")
    assert not handshake.succeeded, handshake.output


@pytest.mark.parametrize(
    "suite",
    [
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
    ],
)
def test_tls_1_2_accepts_ecdhe_aead_suites(gateway: GatewayProcess, suite: str) -> None:
    handshake = s_client(gateway.port, "-tls1_2", "-cipher", suite)
    assert handshake.succeeded, handshake.output
    assert (handshake.protocol, handshake.cipher) == ("TLSv1.2", suite)


def test_tls_1_3_is_accepted_and_preferred(gateway: GatewayProcess) -> None:
    handshake = s_client(gateway.port)  # the client offers TLS 1.2 and 1.3
    assert handshake.succeeded, handshake.output
    assert handshake.protocol == "TLSv1.3"


def test_the_server_picks_the_suite_from_its_own_order(gateway: GatewayProcess) -> None:
    # The client lists ChaCha20 first; the server prefers AES-GCM (hardware AES here).
    client_order = "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256"
    handshake = s_client(gateway.port, "-tls1_2", "-cipher", client_order)
    assert handshake.succeeded, handshake.output
    assert handshake.cipher == "ECDHE-ECDSA-AES128-GCM-SHA256"


def test_tls_1_2_renegotiation_is_refused(gateway: GatewayProcess) -> None:
    # "R" on s_client's stdin asks for a renegotiation; the server must not do one.
    handshake = s_client(gateway.port, "-tls1_2", stdin="R\n")
    assert "CONNECTION ESTABLISHED" in handshake.output, handshake.output
    assert "RENEGOTIATING" in handshake.output  # asked ...
    assert ":no renegotiation:" in handshake.output  # ... and refused by the server's alert


@pytest.mark.parametrize(
    ("suite", "accepted"),
    [
        ("ECDHE-RSA-AES128-GCM-SHA256", True),
        ("ECDHE-RSA-CHACHA20-POLY1305", True),
        ("ECDHE-RSA-AES256-SHA384", False),
        ("ECDHE-RSA-AES128-SHA256", False),
        ("AES128-SHA256", False),
        ("DHE-RSA-AES128-GCM-SHA256", False),
    ],
)
def test_an_rsa_certificate_gets_the_same_suite_policy(
    rsa_gateway: GatewayProcess, suite: str, accepted: bool
) -> None:
    handshake = s_client(rsa_gateway.port, "-tls1_2", "-cipher", f"{suite}@SECLEVEL=0")
    assert handshake.succeeded is accepted, handshake.output
    if accepted:
        assert handshake.cipher == suite
