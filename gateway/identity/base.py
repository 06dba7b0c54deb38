"""The Identity value and the seam every credential form implements.

Three outcomes stay distinct, as in Starlette's AuthenticationBackend: no credentials
(the ``ANONYMOUS`` identity, which the policy may refuse), bad credentials
(``IdentityError``, answered 401 before the policy is asked), and a proven ``Identity``.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:  # proof.py builds Credentials from the headers: no import cycle at run time
    from .proof import RequestProof

AuthMethod = Literal["anonymous", "token", "jwt", "mtls"]


@dataclass(frozen=True, slots=True)
class Identity:
    subject: str | None
    groups: tuple[str, ...]
    method: AuthMethod
    details: tuple[tuple[str, str], ...] = ()
    """What else the credential proved, as (name, value) pairs a policy may use and the
    audit record keeps: a token's id, a certificate's serial and issuer, a JWT's issuer
    and mapped claims (a CI job's repository, ref, workflow, run id and commit)."""

    @property
    def authenticated(self) -> bool:
        return self.method != "anonymous"


ANONYMOUS = Identity(subject=None, groups=(), method="anonymous")


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a request presented: a bearer secret, or HTTP Basic's login and password."""

    secret: str
    login: str | None = None
    """The Basic-auth user name (the .netrc ``login``); None for a bearer token."""


class Identifier(Protocol):
    """One credential form. ``identify`` proves the identity ``proof`` presents in its form
    (``proof.credentials``, ``proof.peer_certificates``) or raises IdentityError; it returns
    None when the request presents nothing of its form (so the next one may try)."""

    async def identify(self, proof: "RequestProof") -> Identity | None: ...
