"""``identify``: turn a request's credentials into an Identity, trying each form in turn."""

from collections.abc import Sequence

from ..errors import IdentityError
from .base import ANONYMOUS, Identifier, Identity
from .headers import parse_authorization


async def identify(authorization: str | None, identifiers: Sequence[Identifier]) -> Identity:
    """Return ANONYMOUS without credentials, an Identity when proven; raise IdentityError."""
    credentials = parse_authorization(authorization)
    if credentials is None:
        return ANONYMOUS
    for identifier in identifiers:
        identity = await identifier.identify(credentials)
        if identity is not None:
            return identity
    raise IdentityError("credentials not recognised: expected a modgate API token")
