"""Read credentials from the Authorization header, in the two shapes the go command sends.

GOAUTH commands send ``Authorization: Bearer <token>``; a ``.netrc`` line makes the go
command send Basic auth with the token as password (cmd/go/internal/auth/netrc.go, and
web/http.go attaches them to https requests only).
"""

import base64
import binascii

from ..errors import IdentityError
from .base import Credentials

MAX_AUTHORIZATION_BYTES = 4096


def parse_authorization(header: str | None) -> Credentials | None:
    """Return the presented credentials, None when there are none; raise when malformed."""
    if header is None or header.strip() == "":
        return None
    if len(header) > MAX_AUTHORIZATION_BYTES:
        raise IdentityError("Authorization header too long")
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return Credentials(secret=value)
    if scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise IdentityError("malformed Basic credentials") from exc
        login, colon, password = decoded.partition(":")
        if not colon or not password:
            raise IdentityError("Basic credentials need a password (the API token)")
        return Credentials(secret=password, login=login)
    raise IdentityError(f"unsupported Authorization scheme {scheme!r}: use Bearer or Basic")
