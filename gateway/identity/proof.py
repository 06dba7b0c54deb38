"""RequestProof: everything one request can prove itself with, in one typed value.

Identification takes this and nothing else: every ``Authorization`` value (two are refused,
never read first-wins), the client's address (for the budget of bad credentials), and the
TLS peer certificate chain. A new credential form (mTLS, JWT) is a new ``Identifier``
reading what it needs from here, not a new signature through the pipeline.

The chain comes from the ASGI TLS extension the protocol class puts in the scope
(``http/tls.py``): present only when the handshake verified it against
``tls.client_ca_file``, so anything here is a certificate of a trusted CA.
"""

import ssl
from dataclasses import dataclass
from functools import cached_property

from starlette.requests import Request

from ..http.tls import TLS_EXTENSION
from .base import Credentials
from .headers import parse_authorization, single_authorization


@dataclass(frozen=True)
class RequestProof:
    authorizations: tuple[str, ...]
    """Every Authorization header value, in the order received."""
    client_address: str
    peer_certificates: tuple[bytes, ...] = ()
    """The client's TLS certificate chain (DER, leaf first); empty without client TLS."""

    @property
    def authorization(self) -> str | None:
        """The one Authorization value (None without); DuplicateAuthorizationError for two."""
        return single_authorization(self.authorizations)

    @property
    def presents_anything(self) -> bool:
        """Whether there is anything to prove: no header (or a blank one) and no certificate
        is an anonymous request, never charged to the budget of bad credentials."""
        header = self.authorization
        return bool(header and header.strip()) or bool(self.peer_certificates)

    @cached_property
    def credentials(self) -> Credentials | None:
        """The Authorization credentials (None without); IdentityError when malformed.
        Parsed once however many identifiers ask (a refusal is not cached: it raises again)."""
        return parse_authorization(self.authorization)


def request_proof(request: Request) -> RequestProof:
    """What ``request`` presents, read from its headers and connection."""
    client = request.client.host if request.client else ""
    tls = request.scope.get("extensions", {}).get(TLS_EXTENSION) or {}
    chain = tuple(ssl.PEM_cert_to_DER_cert(pem) for pem in tls.get("client_cert_chain", ()))
    return RequestProof(tuple(request.headers.getlist("authorization")), client, chain)
