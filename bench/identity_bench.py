"""Micro-benchmark: what identifying one request costs, per credential form, in this process.

No server: the identifiers modgate runs, called the way the identify stage calls them, on a
``RequestProof`` as the app builds it. Per path it prints µs per identification (best of
the rounds, as ``timeit`` advises: the rest is noise) and the ratio to the baseline, an API
token found in the token cache (what most of a go command's requests cost today); rows
that check a JWT signature on every call also print that as verifications per second (one
core, this process). The identifiers are coroutines, each run to completion on an event
loop: that share (about 20 µs) is in every identifier row alike. Each row reuses one
``RequestProof``, so the ``Authorization`` header is parsed once (``credentials`` is
cached on the proof), in every row alike.

    .venv/bin/python bench/identity_bench.py [--rounds 5] [--number 20000] [--verify-number 2000]

The full-verification rows cost over ten times the others, so their rounds are
``--verify-number`` calls (still most of a second each), which keeps the whole run short.

Paths:
- token, cached: ``TokenIdentifier`` with its cache warm (the baseline);
- certificate, cached: ``CertificateIdentifier`` on a certificate it has seen (the
  parse is cached by the certificate's bytes; the expiry is checked every time);
- certificate + CRL: the same with ``tls.client_crl_file`` (a CRL of 1,000 serials);
- certificate, first sight: the parse of a new certificate (once per certificate);
- request proof: ``request_proof`` on a scope carrying the ASGI TLS extension (the PEM
  to DER conversion every request pays when a certificate is presented);
- JWT <alg>, full verification: ``JwtIdentifier`` with its cache off (``cache_entries=0``)
  on a Bearer JWT signed with RS256 (RSA 2048), PS256 (RSA 2048), ES256 (P-256) or EdDSA
  (Ed25519): header and payload decoded, issuer, alg and kid checked, the signature and
  the claims verified, the identity built, every call. The key set is warm: one JWKS file
  of the four public keys, ``KeySet(name, FileKeys(path), 300, 30)``, which stats the file
  at most once a second (a few of the calls of a round pay that stat);
- JWT, cached: the same identifier with ``cache_entries=10000`` and the same RS256 token
  every call (a go command's hundreds of requests with one CI token): a SHA-256 of the
  token, a dict lookup, the expiry and the signing key's presence checked.
"""

from __future__ import annotations

import argparse
import asyncio
import json
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
from gateway.identity.jwks import FileKeys, KeySet  # noqa: E402
from gateway.identity.jwts import Issuer, JwtIdentifier  # noqa: E402
from gateway.identity.proof import RequestProof, request_proof  # noqa: E402
from gateway.identity.revocation import RevocationList  # noqa: E402
from gateway.identity.tokens import StoredToken, TokenIdentifier, new_token  # noqa: E402
from gateway.settings import CERT_SUBJECT_SOURCES, JWT_ALGORITHMS, JwtIssuerSettings  # noqa: E402
from tests.support.jwks import SigningKey, claims, jwks  # noqa: E402
from tests.support.x509 import TestAuthority  # noqa: E402

BASELINE = "token, cached"
ISSUER = "https://sso.corp.example"
VERIFYING = "full verification"
"""Rows whose name holds this check a signature every call: they get a verifications/s."""


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

    signing = {alg: SigningKey.create(f"bench-{alg.lower()}", alg) for alg in JWT_ALGORITHMS}
    (work / "jwks.json").write_text(json.dumps(jwks(*signing.values())))
    sso = JwtIssuerSettings(
        name="sso",
        issuer=ISSUER,
        audience=("modgate",),
        algorithms=JWT_ALGORITHMS,
        groups_claim="groups",
        subject_prefix="sso:",
    )
    issuers = [Issuer(sso, keys=KeySet("sso", FileKeys(work / "jwks.json"), 300, 30))]
    uncached = JwtIdentifier(issuers, cache_entries=0)
    cached = JwtIdentifier(issuers, cache_entries=10000)
    jwt_claims = claims(ISSUER, lifetime_s=3600, sub="alice", groups=["developers"])
    jwt_proofs = {
        alg: RequestProof((f"Bearer {key.sign(jwt_claims)}",), "127.0.0.1")
        for alg, key in signing.items()
    }

    Identifier = TokenIdentifier | CertificateIdentifier | JwtIdentifier

    def run(identifier: Identifier, proof: RequestProof) -> object:
        return loop.run_until_complete(identifier.identify(proof))

    for identifier, proof in (
        (tokens, token_proof),
        (certificates, cert_proof),
        (with_crl, cert_proof),
        *((uncached, jwt_proof) for jwt_proof in jwt_proofs.values()),
        (cached, jwt_proofs["RS256"]),
    ):
        assert run(identifier, proof) is not None  # warm, and proven to identify
    before = uncached.verifications, cached.verifications
    run(uncached, jwt_proofs["RS256"])
    run(cached, jwt_proofs["RS256"])
    after = uncached.verifications, cached.verifications
    assert after == (before[0] + 1, before[1]), "uncached verifies every call, cached never"

    def jwt_row(alg: str) -> Callable[[], object]:
        return lambda: run(uncached, jwt_proofs[alg])

    return {
        BASELINE: lambda: run(tokens, token_proof),
        "certificate, cached": lambda: run(certificates, cert_proof),
        "certificate + CRL (1,000 serials)": lambda: run(with_crl, cert_proof),
        "certificate, first sight": lambda: certificate_subject(der, CERT_SUBJECT_SOURCES),
        "request proof with a certificate": lambda: request_proof(Request(scope)),
        **{f"JWT {alg}, {VERIFYING}": jwt_row(alg) for alg in JWT_ALGORITHMS},
        "JWT, cached (same token)": lambda: run(cached, jwt_proofs["RS256"]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--number", type=int, default=20000, help="calls per round")
    parser.add_argument(
        "--verify-number", type=int, default=2000, help="calls per round of a full verification"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="modgate-identity-bench-") as work:
        measured = paths(Path(work))
        best = {}
        for name, call in measured.items():
            number = args.verify_number if VERIFYING in name else args.number
            best[name] = min(timeit.repeat(call, number=number, repeat=args.rounds)) / number
    base = best[BASELINE]
    print(
        f"µs per identification, best of {args.rounds} rounds of {args.number} "
        f"({args.verify_number} for a {VERIFYING})"
    )
    print(f"{'path':<36} {'µs':>8} {'x':>6} {'verif/s':>8}")
    for name, seconds in best.items():
        rate = f"{1 / seconds:>8.0f}" if VERIFYING in name else ""
        print(f"{name:<36} {seconds * 1e6:>8.2f} {seconds / base:>6.2f} {rate}".rstrip())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
