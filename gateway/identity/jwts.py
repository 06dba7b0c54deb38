"""JwtIdentifier: the identity a JWT of a trusted issuer (``[[jwt.issuers]]``) proves.

A JWT is taken as ``Authorization: Bearer <jwt>`` (a GOAUTH command) and as the HTTP Basic
password (a ``.netrc`` line; its login is not read, CI systems put anything there).

Verification, in this order, each failure a 401 with its own code (errors.py):
1. the token is three base64url parts and its header and payload are JSON (``jwt_malformed``);
2. its ``iss`` is a configured issuer, matched exactly (``jwt_untrusted_issuer``);
3. its ``alg`` is one that issuer is configured for: never ``none``, and HS256 only for an
   issuer with a shared secret and no JWKS, so a public key can never be used as an HMAC
   secret (``jwt_algorithm_refused``);
4. its ``kid`` names a published key of the issuer, of a type that ``alg`` uses
   (``jwt_unknown_key``; the key set is refetched, rate-limited, first: ``jwks.py``);
5. the signature, then ``exp``, ``nbf``, ``iat``, ``iss`` and ``aud`` with the issuer's
   leeway (``exp``, ``iss`` and ``aud`` are required);
6. the subject claim is a non-empty string; the groups claim a list of strings.

Verified tokens are remembered by their SHA-256 until their ``exp`` (``jwt.cache_entries``
of them, the oldest forgotten first): the hundreds of requests a go command sends with one
CI token pay for one signature check. A remembered token whose signing key the issuer has
since withdrawn is verified again, and refused. No message repeats the token or a value
read from it before it was verified.
"""

import base64
import binascii
import datetime as dt
import hashlib
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jwt
from jwt.exceptions import InvalidJTIError, InvalidSubjectError

from ..errors import (
    JwtAlgorithmError,
    JwtAudienceError,
    JwtClaimError,
    JwtExpiredError,
    JwtIssuerError,
    JwtMalformedError,
    JwtNotYetValidError,
    JwtSignatureError,
)
from ..settings import JwtIssuerSettings
from .base import Identity
from .jwks import KeySet
from .proof import RequestProof

JWT_RE = re.compile(r"^[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*$")
MAX_NAME_CHARS = 256
MAX_SUBJECT_CHARS = 128
"""The audit record's subject column holds 128 characters, prefix included."""
MAX_GROUPS = 100
MAX_DETAIL_CHARS = 512
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class Issuer:
    """One configured issuer, ready to verify: its key set or its shared secret."""

    settings: JwtIssuerSettings
    keys: KeySet | None = None
    secret: bytes | None = None

    @property
    def name(self) -> str:
        return self.settings.name


@dataclass(frozen=True, slots=True)
class _Verified:
    identity: Identity
    expires: float
    issuer: Issuer
    kid: str | None


def _name(value: Any, what: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise JwtClaimError(f"the JWT's {what} is not a string")
    text = str(value)
    if not text or len(text) > MAX_NAME_CHARS or _CONTROL.search(text):
        raise JwtClaimError(f"the JWT's {what} is empty, too long or holds control characters")
    return text


def _groups(issuer: JwtIssuerSettings, claims: Mapping[str, Any]) -> tuple[str, ...]:
    found: list[str] = list(issuer.groups)
    if issuer.groups_claim and issuer.groups_claim in claims:
        value = claims[issuer.groups_claim]
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or len(values) > MAX_GROUPS:
            raise JwtClaimError(f"the JWT's {issuer.groups_claim} claim is no list of groups")
        found += [_name(group, f"{issuer.groups_claim} claim") for group in values]
    return tuple(dict.fromkeys(found))


def _detail(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int):
        text = str(value)
        return None if _CONTROL.search(text) else text[:MAX_DETAIL_CHARS]
    return None  # a list or an object is not a detail a rule can compare


def _details(issuer: Issuer, claims: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    details = [("issuer", issuer.settings.issuer), ("issuer_name", issuer.name)]
    if issuer.settings.preset:
        details.append(("provider", issuer.settings.preset))
    if (jti := _detail(claims.get("jti"))) is not None:
        details.append(("token_id", jti))
    for entry in issuer.settings.detail_claims:
        name, _, claim = entry.rpartition("=")
        if claim in claims and (value := _detail(claims[claim])) is not None:
            details.append((name or claim, value))
    return tuple(dict(details).items())  # a later name=claim overrides an earlier one


def _unverified_claims(token: str) -> dict[str, Any]:
    """The payload, read only to pick the issuer (and name an expiry): nothing in it is
    believed before ``_decode`` has checked the signature."""
    payload = token.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, binascii.Error) as exc:
        raise JwtMalformedError("malformed JWT") from exc
    if not isinstance(claims, dict):
        raise JwtMalformedError("malformed JWT: its payload is not a JSON object")
    return claims


def _at(seconds: Any) -> str:
    try:
        return f"{dt.datetime.fromtimestamp(float(seconds), dt.UTC):%Y-%m-%dT%H:%M:%SZ}"
    except (TypeError, ValueError, OverflowError):
        return "an unreadable time"


def _decode(token: str, key: Any, alg: str, issuer: JwtIssuerSettings) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[alg],
            audience=list(issuer.audience),
            issuer=issuer.issuer,
            leeway=issuer.leeway_s,
            options={"require": ["exp", "iss", "aud"]},
        )
    except jwt.ExpiredSignatureError as exc:
        expired = _unverified_claims(token).get("exp")  # the signature did verify
        raise JwtExpiredError(f"the JWT expired at {_at(expired)}: get a new one") from exc
    except jwt.ImmatureSignatureError as exc:
        raise JwtNotYetValidError("the JWT is not valid yet (nbf or iat in the future)") from exc
    except jwt.InvalidAudienceError as exc:
        raise JwtAudienceError(
            f"the JWT is for another audience: issuer {issuer.name} tokens for modgate "
            f"carry aud {', '.join(issuer.audience)}"
        ) from exc
    except jwt.InvalidIssuerError as exc:
        raise JwtIssuerError("the JWT's issuer is not one modgate trusts") from exc
    except jwt.MissingRequiredClaimError as exc:
        raise JwtClaimError(f"the JWT lacks the {exc.claim} claim") from exc
    except (InvalidSubjectError, InvalidJTIError) as exc:
        raise JwtClaimError("the JWT's sub or jti claim is not a string") from exc
    except jwt.InvalidSignatureError as exc:  # a DecodeError: caught before it
        raise JwtSignatureError("the JWT's signature does not verify") from exc
    except jwt.InvalidAlgorithmError as exc:
        raise JwtAlgorithmError("the JWT's alg does not match its signing key") from exc
    except (jwt.InvalidTokenError, jwt.InvalidKeyError) as exc:
        raise JwtMalformedError("malformed JWT") from exc
    return claims


class JwtIdentifier:
    """Proves an Identity from a JWT sent as Bearer or as the Basic password."""

    def __init__(
        self,
        issuers: Sequence[Issuer],
        cache_entries: int,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._issuers = {issuer.settings.issuer: issuer for issuer in issuers}
        self._cache_entries = cache_entries
        self._cache: dict[bytes, _Verified] = {}
        self._clock = clock
        self.verifications = 0
        """Signature checks done (a cache hit does none): for tests and the benchmark."""

    async def identify(self, proof: RequestProof) -> Identity | None:
        credentials = proof.credentials
        if credentials is None or not JWT_RE.match(credentials.secret):
            return None
        token = credentials.secret
        digest = hashlib.sha256(token.encode("ascii")).digest()
        now = self._clock()
        hit = self._cache.get(digest)
        if hit is not None:
            keys = hit.issuer.keys
            if now < hit.expires and (keys is None or keys.holds(hit.kid)):
                return hit.identity
            del self._cache[digest]
        verified = await self._verify(token)
        if self._cache_entries > 0:
            self._cache[digest] = verified
            while len(self._cache) > self._cache_entries:
                del self._cache[next(iter(self._cache))]
        return verified.identity

    async def _verify(self, token: str) -> _Verified:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise JwtMalformedError("malformed JWT") from exc
        iss = _unverified_claims(token).get("iss")
        issuer = self._issuers.get(iss) if isinstance(iss, str) else None
        if issuer is None:
            raise JwtIssuerError("the JWT's issuer is not one modgate trusts (jwt.issuers)")
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in issuer.settings.algorithms:
            raise JwtAlgorithmError(
                f"the JWT's alg is not one issuer {issuer.name} signs with "
                f"({', '.join(issuer.settings.algorithms)})"
            )
        if kid is not None and not isinstance(kid, str):
            raise JwtMalformedError("malformed JWT: its kid is not a string")
        if issuer.secret is not None:
            key: Any = issuer.secret
        elif issuer.keys is not None:
            key = await issuer.keys.key(kid, alg)
        else:  # open_identity gives every issuer one or the other
            raise JwtIssuerError(f"issuer {issuer.name} has no keys")
        self.verifications += 1
        claims = _decode(token, key, alg, issuer.settings)
        settings = issuer.settings
        subject = settings.subject_prefix + _name(
            claims.get(settings.subject_claim), f"{settings.subject_claim} claim"
        )
        if len(subject) > MAX_SUBJECT_CHARS:
            raise JwtClaimError(
                f"the JWT's {settings.subject_claim} claim makes a subject longer than "
                f"{MAX_SUBJECT_CHARS} characters"
            )
        identity = Identity(subject, _groups(settings, claims), "jwt", _details(issuer, claims))
        return _Verified(identity, float(claims["exp"]), issuer, kid)
