"""``identify``: turn a request's credentials into an Identity, trying each form in turn."""

from collections.abc import Sequence

from ..errors import IdentityError
from .base import ANONYMOUS, Identifier, Identity
from .headers import parse_authorization, single_authorization
from .ratelimit import FailedAuthLimiter


async def identify(
    authorizations: Sequence[str],
    client_address: str,
    identifiers: Sequence[Identifier],
    failures: FailedAuthLimiter,
) -> Identity:
    """Return ANONYMOUS without credentials, an Identity when proven; raise otherwise.

    ``authorizations`` are all the request's Authorization values: more than one is a
    DuplicateAuthorizationError (400). A client whose budget of bad credentials is spent
    gets TooManyFailuresError (429) before any identifier is asked; each IdentityError
    answered 401 is charged to that budget."""
    header = single_authorization(authorizations)
    if header is None or header.strip() == "":
        return ANONYMOUS  # no credentials: never charged, never limited
    failures.check(client_address)
    try:
        credentials = parse_authorization(header)
        if credentials is None:
            return ANONYMOUS
        for identifier in identifiers:
            identity = await identifier.identify(credentials)
            if identity is not None:
                return identity
        raise IdentityError("credentials not recognised: expected a modgate API token")
    except IdentityError as exc:
        if exc.status == 401:  # a bad credential; not a store that could not be read (503)
            failures.charge(client_address)
        raise
