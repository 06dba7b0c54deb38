"""Micro-benchmark: what identifying one request costs, per credential form, in this process.

No server: the identifiers modgate runs, called the way the identify stage calls them, on a
``RequestProof`` as the app builds it. Per path it prints µs per identification (best of
the rounds, as ``timeit`` advises: the rest is noise) and the ratio to the baseline, an API
token found in the token cache (what most of a go command's requests cost today). The
identifiers are coroutines, each run to completion on an event loop: that share (about
20 µs) is in every identifier row alike.

    .venv/bin/python bench/identity_bench.py [--rounds 5] [--number 20000]

Paths:
- token, cached: ``TokenIdentifier`` with its cache warm (the baseline);
- certificate, cached: ``CertificateIdentifier`` on a certificate it has seen (the
  parse is cached by the certificate's bytes; the expiry is checked every time);
- certificate + CRL: the same with ``tls.client_crl_file`` (a CRL of 1,000 serials);
- certificate, first sight: the parse of a new certificate (once per certificate);
- request proof: ``request_proof`` on a scope carrying the ASGI TLS extension (the PEM
  to DER conversion every request pays when a certificate is presented).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
import tempfile
import timeit
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.requests import Request

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gateway.http.tls import TLS_EXTENSION  # noqa: E402
from gateway.identity.certificates import CertificateIdentifier, certificate_subject  # noqa: E402
from gateway.identity.proof import RequestProof, request_proof  # noqa: E402
from gateway.identity.revocation import RevocationList  # noqa: E402
from gateway.identity.tokens import StoredToken, TokenIdentifier, new_token  # noqa: E402
from gateway.settings import CERT_SUBJECT_SOURCES  # noqa: E402

NOW = dt.datetime.now(dt.UTC)
BASELINE = "token, cached"


def authority() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench CA")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def client(ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "developers"),
            x509.NameAttribute(NameOID.COMMON_NAME, "builder"),
        ]
    )
    san = x509.SubjectAlternativeName(
        [x509.UniformResourceIdentifier("spiffe://corp.example/ci/builder")]
    )
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(hours=1))
        .not_valid_after(NOW + dt.timedelta(hours=1))
        .add_extension(san, critical=False)
        .sign(ca_key, hashes.SHA256())
        .public_bytes(serialization.Encoding.DER)
    )


def crl(ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, serials: int) -> bytes:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.subject)
        .last_update(NOW - dt.timedelta(minutes=1))
        .next_update(NOW + dt.timedelta(days=1))
    )
    for serial in range(1, serials + 1):
        revoked = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(NOW)
        builder = builder.add_revoked_certificate(revoked.build())
    return builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


class OneToken:
    def __init__(self, token_id: str, stored: StoredToken) -> None:
        self._id, self._stored = token_id, stored

    async def find(self, token_id: str) -> StoredToken | None:
        return self._stored if token_id == self._id else None


def paths(work: Path) -> dict[str, Callable[[], object]]:
    loop = asyncio.new_event_loop()
    ca, ca_key = authority()
    der = client(ca, ca_key)
    (work / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (work / "client.crl").write_bytes(crl(ca, ca_key, 1000))

    made = new_token("alice", ("developers",))
    tokens = TokenIdentifier(OneToken(made.stored.token_id, made.stored), cache_s=3600)
    token_proof = RequestProof((f"Bearer {made.secret_token}",), "127.0.0.1")

    cert_proof = RequestProof((), "127.0.0.1", (der,))
    certificates = CertificateIdentifier(CERT_SUBJECT_SOURCES)
    revocations = RevocationList(str(work / "client.crl"), str(work / "ca.pem"))
    with_crl = CertificateIdentifier(CERT_SUBJECT_SOURCES, revocations)

    pem = serialization.Encoding.PEM
    leaf_pem = x509.load_der_x509_certificate(der).public_bytes(pem).decode()
    scope = {
        "type": "http",
        "headers": [],
        "client": ("127.0.0.1", 50000),
        "extensions": {TLS_EXTENSION: {"client_cert_chain": [leaf_pem]}},
    }

    def run(identifier: TokenIdentifier | CertificateIdentifier, proof: RequestProof) -> object:
        return loop.run_until_complete(identifier.identify(proof))

    for identifier, proof in (
        (tokens, token_proof),
        (certificates, cert_proof),
        (with_crl, cert_proof),
    ):
        assert run(identifier, proof) is not None  # warm, and proven to identify
    return {
        BASELINE: lambda: run(tokens, token_proof),
        "certificate, cached": lambda: run(certificates, cert_proof),
        "certificate + CRL (1,000 serials)": lambda: run(with_crl, cert_proof),
        "certificate, first sight": lambda: certificate_subject(der, CERT_SUBJECT_SOURCES),
        "request proof with a certificate": lambda: request_proof(Request(scope)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--number", type=int, default=20000, help="calls per round")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="modgate-identity-bench-") as work:
        measured = paths(Path(work))
        best = {
            name: min(timeit.repeat(call, number=args.number, repeat=args.rounds)) / args.number
            for name, call in measured.items()
        }
    base = best[BASELINE]
    print(f"µs per identification, best of {args.rounds} rounds of {args.number}")
    print(f"{'path':<36} {'µs':>8} {'x':>6}")
    for name, seconds in best.items():
        print(f"{name:<36} {seconds * 1e6:>8.2f} {seconds / base:>6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
