"""Read credentials from the Authorization header, in the two shapes the go command sends.

GOAUTH commands send ``Authorization: Bearer <token>``; a ``.netrc`` line makes the go
command send Basic auth with the token as password (cmd/go/internal/auth/netrc.go, and
web/http.go attaches them to https requests only).

No message here repeats what the caller sent: a token pasted in the wrong place (as the
scheme, say) would otherwise come back in the 401 body and land in the audit record.
"""

import base64
import binascii
from collections.abc import Sequence

from ..errors import DuplicateAuthorizationError, IdentityError
from .base import Credentials

MAX_AUTHORIZATION_BYTES = 8192
"""A CI system's OIDC id_token is 1-2 KB; as a Basic password, base64 adds a third."""

# Names from the IANA HTTP Authentication Scheme Registry: a refusal may name one of
# these (spelled from this table, never from the request) to say what was sent.
_KNOWN_SCHEMES = {
    name.lower(): name
    for name in (
        "Concealed",
        "Digest",
        "DPoP",
        "GNAP",
        "HOBA",
        "Mutual",
        "Negotiate",
        "OAuth",
        "PrivateToken",
        "SCRAM-SHA-1",
        "SCRAM-SHA-256",
        "vapid",
    )
}


def single_authorization(values: Sequence[str]) -> str | None:
    """The request's one Authorization value (None without); raise when there are more.

    Two headers are refused rather than read first-wins: a proxy in front of modgate, the
    audit record and the policy could each believe a different one."""
    if len(values) > 1:
        raise DuplicateAuthorizationError("more than one Authorization header")
    return values[0] if values else None


def _unsupported(scheme: str, value: str) -> IdentityError:
    if not value:  # one word: most likely a bare token with its scheme forgotten
        return IdentityError("Authorization header without a scheme: use Bearer or Basic")
    known = _KNOWN_SCHEMES.get(scheme.lower())
    if known is not None:
        return IdentityError(f"unsupported Authorization scheme {known}: use Bearer or Basic")
    return IdentityError("unsupported Authorization scheme: use Bearer or Basic")


def parse_authorization(header: str | None) -> Credentials | None:
    """Return the presented credentials, None when there are none; raise when malformed."""
    if header is None or header.strip() == "":
        return None
    if len(header) > MAX_AUTHORIZATION_BYTES:
        raise IdentityError("Authorization header too long")
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    kind = scheme.lower()
    if kind not in ("bearer", "basic"):
        raise _unsupported(scheme, value)
    if not value:
        raise IdentityError(f"empty {scheme.capitalize()} credentials")
    if "," in value:
        # A token and base64 have no comma (RFC 6750 b64token, RFC 7617): this is two
        # headers folded into one by a proxy on the way (RFC 9110 section 5.3).
        raise DuplicateAuthorizationError("more than one credential in the Authorization header")
    if kind == "bearer":
        return Credentials(secret=value)
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise IdentityError("malformed Basic credentials") from exc
    login, colon, password = decoded.partition(":")
    if not colon or not password:
        raise IdentityError("Basic credentials need a password (the API token)")
    return Credentials(secret=password, login=login)
