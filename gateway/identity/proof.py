"""RequestProof: everything one request can prove itself with, in one typed value.

Identification takes this and nothing else: every ``Authorization`` value (two are refused,
never read first-wins), the client's address (for the budget of bad credentials), and the
TLS peer certificate chain. A new credential form (mTLS, JWT) is a new ``Identifier``
reading what it needs from here, not a new signature through the pipeline.

The chain comes from the ASGI TLS extension the protocol class puts in the scope
(``http/tls.py``): present only when the handshake verified it against
``tls.client_ca_file``, so anything here is a certificate of a trusted CA. Behind a
trusted front proxy (``forwarded.py``) the client's address and certificate come from the
proxy's headers instead, read by ``ProofReader``; a forwarded header that cannot be
believed becomes the proof's ``refusal``, so the request is refused and audited at the
identify stage, like any other bad credential.
"""

import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from cryptography import x509
from starlette.requests import Request

from ..http.tls import TLS_EXTENSION
from .base import Credentials
from .forwarded import (
    XFCC,
    XFF,
    ForwardedError,
    ForwardedTrust,
    forwarded_certificate,
    parse_networks,
)
from .headers import parse_authorization, single_authorization


@dataclass(frozen=True)
class RequestProof:
    authorizations: tuple[str, ...]
    """Every Authorization header value, in the order received."""
    client_address: str
    peer_certificates: tuple[bytes, ...] = ()
    """The client's TLS certificate chain (DER, leaf first); empty without client TLS."""
    refusal: str | None = None
    """Why the request's forwarded identity cannot be believed (identify refuses it)."""
    forwarded_by: str | None = None
    """The trusted proxy that forwarded ``peer_certificates``; None: modgate's handshake."""

    @property
    def authorization(self) -> str | None:
        """The one Authorization value (None without); DuplicateAuthorizationError for two."""
        return single_authorization(self.authorizations)

    @property
    def presents_anything(self) -> bool:
        """Whether there is anything to prove: no header (or a blank one) and no certificate
        is an anonymous request, never charged to the budget of bad credentials."""
        header = self.authorization
        return bool(header and header.strip()) or bool(self.peer_certificates) or bool(self.refusal)

    @cached_property
    def credentials(self) -> Credentials | None:
        """The Authorization credentials (None without); IdentityError when malformed.
        Parsed once however many identifiers ask (a refusal is not cached: it raises again)."""
        return parse_authorization(self.authorization)


def request_proof(request: Request) -> RequestProof:
    """What ``request`` presents, read from its headers and connection (no front proxy)."""
    return ProofReader().read(request)


@dataclass(frozen=True, slots=True)
class ProofReader:
    """Reads a request's proof, believing forwarded headers from ``trust`` only."""

    trust: ForwardedTrust = field(default_factory=ForwardedTrust)
    forwarded_authorities: Sequence[x509.Certificate] = ()
    """CAs of forwarded client certificates; empty: X-Forwarded-Client-Cert is refused."""

    @classmethod
    def open(cls, trusted_proxies: Sequence[str], forwarded_ca_file: str) -> "ProofReader":
        authorities: tuple[x509.Certificate, ...] = ()
        if forwarded_ca_file:
            authorities = tuple(
                x509.load_pem_x509_certificates(Path(forwarded_ca_file).read_bytes())
            )
        return cls(ForwardedTrust(parse_networks(trusted_proxies)), authorities)

    def read(self, request: Request) -> RequestProof:
        peer = request.client.host if request.client else ""
        headers = request.headers
        authorizations = tuple(headers.getlist("authorization"))
        client = self.trust.client_address(peer, headers.getlist(XFF)) if XFF in headers else peer
        forwarded = headers.getlist(XFCC)
        if forwarded:
            return self._forwarded(authorizations, peer, client, forwarded)
        tls = request.scope.get("extensions", {}).get(TLS_EXTENSION) or {}
        chain = tuple(ssl.PEM_cert_to_DER_cert(pem) for pem in tls.get("client_cert_chain", ()))
        return RequestProof(authorizations, client, chain)

    def _forwarded(
        self, authorizations: tuple[str, ...], peer: str, client: str, values: list[str]
    ) -> RequestProof:
        if not self.trust.trusts(peer):
            refusal = (
                f"X-Forwarded-Client-Cert from {peer}, which is not a trusted proxy "
                "(server.trusted_proxies)"
            )
            return RequestProof(authorizations, client, refusal=refusal)
        if not self.forwarded_authorities:
            refusal = (
                "X-Forwarded-Client-Cert is not read by this gateway "
                "(identity.forwarded_client_cert is off)"
            )
            return RequestProof(authorizations, client, refusal=refusal)
        if len(values) > 1:
            return RequestProof(
                authorizations, client, refusal="more than one X-Forwarded-Client-Cert"
            )
        try:
            der = forwarded_certificate(values[0], self.forwarded_authorities)
        except ForwardedError as exc:
            return RequestProof(authorizations, client, refusal=str(exc))
        return RequestProof(authorizations, client, (der,), forwarded_by=peer)
