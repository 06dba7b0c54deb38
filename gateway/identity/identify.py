"""``identify``: turn a request's credentials into an Identity, trying each form in turn."""

from collections.abc import Sequence

from ..errors import IdentityError
from .base import ANONYMOUS, Identifier, Identity
from .headers import parse_authorization, single_authorization


async def identify(authorizations: Sequence[str], identifiers: Sequence[Identifier]) -> Identity:
    """Return ANONYMOUS without credentials, an Identity when proven; raise otherwise.

    ``authorizations`` are all the request's Authorization values: more than one is a
    DuplicateAuthorizationError (400)."""
    credentials = parse_authorization(single_authorization(authorizations))
    if credentials is None:
        return ANONYMOUS
    for identifier in identifiers:
        identity = await identifier.identify(credentials)
        if identity is not None:
            return identity
    raise IdentityError("credentials not recognised: expected a modgate API token")
