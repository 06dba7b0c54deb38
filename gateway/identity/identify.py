"""``identify``: turn what a request presents into an Identity, trying each form in turn."""

from collections.abc import Sequence

from ..errors import ForwardedIdentityError, IdentityError
from .base import ANONYMOUS, Identifier, Identity
from .proof import RequestProof
from .ratelimit import FailedAuthLimiter


async def identify(
    proof: RequestProof,
    identifiers: Sequence[Identifier],
    failures: FailedAuthLimiter,
    expected: str = "a modgate API token",
) -> Identity:
    """Return ANONYMOUS without credentials, an Identity when proven; raise otherwise.

    More than one Authorization value is a DuplicateAuthorizationError (400). A client
    whose budget of bad credentials is spent gets TooManyFailuresError (429) before any
    identifier is asked; each IdentityError answered 401 is charged to that budget."""
    if not proof.presents_anything:
        return ANONYMOUS  # no credentials: never charged, never limited
    failures.check(proof.client_address)
    try:
        if proof.refusal is not None:  # a forwarded identity that cannot be believed
            raise ForwardedIdentityError(proof.refusal)
        credentials = proof.credentials  # malformed: refused (and charged) before any identifier
        for identifier in identifiers:
            identity = await identifier.identify(proof)
            if identity is not None:
                return identity
        if credentials is None:
            return ANONYMOUS  # a certificate no identifier reads proves nothing, nor refuses
        raise IdentityError(f"credentials not recognised: expected {expected}")
    except IdentityError as exc:
        if exc.status == 401:  # a bad credential; not a store that could not be read (503)
            failures.charge(proof.client_address)
        raise
