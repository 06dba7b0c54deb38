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
import sys
import tempfile
import timeit
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from starlette.requests import Request

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gateway.http.tls import TLS_EXTENSION  # noqa: E402
from gateway.identity.certificates import CertificateIdentifier, certificate_subject  # noqa: E402
from gateway.identity.proof import RequestProof, request_proof  # noqa: E402
from gateway.identity.revocation import RevocationList  # noqa: E402
from gateway.identity.tokens import StoredToken, TokenIdentifier, new_token  # noqa: E402
from gateway.settings import CERT_SUBJECT_SOURCES  # noqa: E402
from tests.support.x509 import TestAuthority  # noqa: E402

BASELINE = "token, cached"


class OneToken:
    def __init__(self, token_id: str, stored: StoredToken) -> None:
        self._id, self._stored = token_id, stored

    async def find(self, token_id: str) -> StoredToken | None:
        return self._stored if token_id == self._id else None


def paths(work: Path) -> dict[str, Callable[[], object]]:
    loop = asyncio.new_event_loop()
    ca = TestAuthority.create("bench CA")
    builder = x509.UniformResourceIdentifier("spiffe://corp.example/ci/builder")
    leaf, _ = ca.certificate("builder", units=("developers",), sans=(builder,))
    der = leaf.public_bytes(serialization.Encoding.DER)
    ca.write(work / "ca.pem")
    (work / "client.crl").write_bytes(ca.crl(*range(1, 1001)))

    made = new_token("alice", ("developers",))
    tokens = TokenIdentifier(OneToken(made.stored.token_id, made.stored), cache_s=3600)
    token_proof = RequestProof((f"Bearer {made.secret_token}",), "127.0.0.1")

    cert_proof = RequestProof((), "127.0.0.1", (der,))
    certificates = CertificateIdentifier(CERT_SUBJECT_SOURCES)
    revocations = RevocationList(str(work / "client.crl"), str(work / "ca.pem"))
    with_crl = CertificateIdentifier(CERT_SUBJECT_SOURCES, revocations)

    leaf_pem = leaf.public_bytes(serialization.Encoding.PEM).decode()
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
