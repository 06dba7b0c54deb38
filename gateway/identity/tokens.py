"""API tokens: ``mgt_<id>_<secret>``, of which the store keeps only a salted SHA-256.

The secret is 32 random bytes, so a single salted SHA-256 is enough (a slow password hash
would buy nothing against brute force and cost milliseconds per request). The id lets the
store find the row without scanning; the comparison is constant-time.

Verified tokens are cached for ``cache_s`` seconds, which bounds how long a revoked token
keeps working on a running gateway. Ids the store does not know are remembered for
``negative_cache_s`` seconds (at most ``NEGATIVE_CACHE_ENTRIES`` of them, the oldest
forgotten first), so repeating an unknown id, as the go command does with every refused
request, costs no lookup. That cannot hide a token made meanwhile: ids are 64 random bits
drawn when the token is made (``new_token``), so a new token's id has never been asked for.

No message here repeats the presented secret or the Basic user name (a token is often
pasted into the wrong field).
"""

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from ..errors import IdentityError
from .base import Identity
from .proof import RequestProof

TOKEN_PREFIX = "mgt"
NEGATIVE_CACHE_ENTRIES = 10_000
_TOKEN_RE = re.compile(r"^mgt_([0-9a-f]{16})_([0-9a-f]{64})$")
SUBJECT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")
GROUP_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True, slots=True)
class StoredToken:
    token_id: str
    subject: str
    groups: tuple[str, ...]
    salt: str
    digest: str
    revoked: bool
    expires_at: datetime | None = None
    """After this instant (UTC) the token is refused; None: it does not expire."""


@dataclass(frozen=True, slots=True)
class NewToken:
    """A token just made: ``secret_token`` is shown once and never stored."""

    stored: StoredToken
    secret_token: str


class TokenStore(Protocol):
    """Where token hashes live (the audit database). ``find`` returns None for unknown ids."""

    async def find(self, token_id: str) -> StoredToken | None: ...


def _digest(salt: str, secret: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + secret.encode("ascii")).hexdigest()


def new_token(
    subject: str, groups: tuple[str, ...], expires_at: datetime | None = None
) -> NewToken:
    """Make a token for ``subject`` in ``groups`` (valid until ``expires_at``, if given);
    raise ValueError on a bad name."""
    if not SUBJECT_RE.match(subject):
        raise ValueError(f"bad subject {subject!r}: letters, digits and ._@- only")
    for group in groups:
        if not GROUP_RE.match(group):
            raise ValueError(f"bad group {group!r}: letters, digits and ._- only")
    token_id, secret, salt = secrets.token_hex(8), secrets.token_hex(32), secrets.token_hex(16)
    stored = StoredToken(
        token_id, subject, groups, salt, _digest(salt, secret), revoked=False, expires_at=expires_at
    )
    return NewToken(stored, f"{TOKEN_PREFIX}_{token_id}_{secret}")


class TokenIdentifier:
    """Proves an Identity from an API token sent as Bearer or as the Basic password."""

    def __init__(
        self,
        store: TokenStore,
        cache_s: float,
        negative_cache_s: float = 0.0,
        *,
        negative_entries: int = NEGATIVE_CACHE_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._cache_s = cache_s
        self._cache: dict[str, tuple[float, StoredToken]] = {}
        self._negative_cache_s = negative_cache_s
        self._negative_entries = negative_entries
        self._unknown: dict[str, float] = {}  # token id -> when the store said so; oldest first
        self._clock = clock

    def forget(self, token_id: str) -> None:
        """Drop ``token_id`` from the cache (it was revoked): the next use reads the store."""
        self._cache.pop(token_id, None)

    def forget_all(self) -> None:
        """Drop every cached token (revocations may have been missed)."""
        self._cache.clear()

    def _known_unknown(self, token_id: str, now: float) -> bool:
        seen = self._unknown.get(token_id)
        if seen is None:
            return False
        if now - seen < self._negative_cache_s:
            return True
        del self._unknown[token_id]
        return False

    def _remember_unknown(self, token_id: str, now: float) -> None:
        if self._negative_cache_s <= 0:
            return
        self._unknown[token_id] = now
        while len(self._unknown) > self._negative_entries:
            del self._unknown[next(iter(self._unknown))]

    async def _lookup(self, token_id: str) -> StoredToken | None:
        now = self._clock()
        hit = self._cache.get(token_id)
        if hit is not None and now - hit[0] < self._cache_s:
            return hit[1]
        if self._known_unknown(token_id, now):
            return None
        stored = await self._store.find(token_id)
        if stored is None:
            self._cache.pop(token_id, None)
            self._remember_unknown(token_id, now)
        else:
            self._cache[token_id] = (now, stored)
        return stored

    async def identify(self, proof: RequestProof) -> Identity | None:
        credentials = proof.credentials
        if credentials is None:
            return None
        match = _TOKEN_RE.match(credentials.secret)
        if match is None:
            if credentials.secret.startswith(f"{TOKEN_PREFIX}_"):
                raise IdentityError("malformed API token")
            return None
        token_id, secret = match.groups()
        stored = await self._lookup(token_id)
        if stored is None or not hmac.compare_digest(stored.digest, _digest(stored.salt, secret)):
            raise IdentityError("unknown or wrong API token")
        if stored.revoked:
            raise IdentityError("API token has been revoked")
        if stored.expires_at is not None and datetime.now(UTC) >= stored.expires_at:
            raise IdentityError(
                f"API token expired at {stored.expires_at:%Y-%m-%dT%H:%M:%SZ}: make a new one"
            )
        if credentials.login is not None and credentials.login != stored.subject:
            raise IdentityError("the Basic user name does not match the token's subject")
        details = (("token_id", stored.token_id),)  # names the row `modgate token revoke` takes
        return Identity(stored.subject, stored.groups, "token", details)
