"""KeySet: one JWT issuer's public keys, by ``kid``, kept current without a restart.

The keys come from a JWKS file (reread when it changes, looked at once a second), an https
URL, or the URL an OpenID provider names as ``jwks_uri`` at
``<issuer>/.well-known/openid-configuration`` (the document's ``issuer`` must be the
configured one: a discovery document that names another issuer is refused). Fetching uses
the identity stage's one aiohttp session: pyjwt's ``PyJWKClient`` fetches with blocking
urllib, which would stall every request on the event loop while an issuer is slow.

When keys are fetched:
- on first use, and again every ``refresh_s`` (a scheduled rotation needs no restart);
- when a token names a ``kid`` the set does not hold (a rotation that came early);
- but never twice within ``min_interval_s``, whatever the reason: a flood of tokens with
  made-up key ids, or an issuer that is down, costs the issuer one request per interval.

A failed refresh keeps the last good keys (an issuer's outage must not lock out every CI
job whose token it already signed) until they are ``max_age_s`` old (``jwt.keys_max_age_s``:
a key the issuer withdrew meanwhile must not work forever); with no good keys, tokens of
this issuer are refused with 503 ``identity_unavailable`` and the reason. Only public
keys of the types the algorithms need are kept (RSA, EC P-256, Ed25519); a symmetric
("oct") key in a JWKS is dropped, so no published key can become an HMAC secret.
"""

import asyncio
import json
import logging
import math
import os
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import jwt

from ..errors import IdentityUnavailableError, JwtAlgorithmError, JwtUnknownKeyError

log = logging.getLogger(__name__)

MAX_JWKS_BYTES = 512 * 1024
MAX_KEYS = 100
FILE_RECHECK_S = 1.0

ALGORITHMS_BY_KEY_TYPE: Mapping[tuple[str, str | None], frozenset[str]] = {
    ("RSA", None): frozenset({"RS256", "PS256"}),
    ("EC", "P-256"): frozenset({"ES256"}),
    ("OKP", "Ed25519"): frozenset({"EdDSA"}),
}
"""Which token ``alg`` a key of each (kty, crv) may verify: an RSA key never verifies ES256."""


class KeySetError(Exception):
    """Why a key set could not be had (unreachable, not JSON, no usable key)."""


class KeySource(Protocol):
    @property
    def description(self) -> str:
        """Where the keys come from, for log lines and refusals."""
        ...

    async def read(self) -> bytes:
        """The JWKS document; KeySetError when it cannot be had."""
        ...


@dataclass(frozen=True, slots=True)
class FileKeys:
    path: Path

    @property
    def description(self) -> str:
        return str(self.path)

    def stamp(self) -> tuple[int, int]:
        try:
            status = os.stat(self.path)
        except OSError:
            return (-1, -1)
        return (status.st_mtime_ns, status.st_size)

    async def read(self) -> bytes:
        try:
            return self.path.read_bytes()
        except OSError as exc:
            raise KeySetError(f"cannot read {self.path}: {exc.strerror}") from exc


async def _get(
    session: aiohttp.ClientSession, url: str, context: ssl.SSLContext, timeout_s: float
) -> bytes:
    try:
        async with session.get(
            url,
            ssl=context,
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=timeout_s),
            headers={"Accept": "application/json"},
        ) as response:
            if response.status != 200:
                raise KeySetError(f"{url} answered {response.status}")
            body = await response.content.read(MAX_JWKS_BYTES + 1)
    except (aiohttp.ClientError, TimeoutError, ssl.SSLError) as exc:
        raise KeySetError(f"cannot fetch {url}: {type(exc).__name__} {exc}") from exc
    if len(body) > MAX_JWKS_BYTES:
        raise KeySetError(f"{url} sent more than {MAX_JWKS_BYTES} bytes")
    return body


@dataclass(frozen=True, slots=True)
class UrlKeys:
    session: aiohttp.ClientSession
    url: str
    context: ssl.SSLContext
    timeout_s: float

    @property
    def description(self) -> str:
        return self.url

    async def read(self) -> bytes:
        return await _get(self.session, self.url, self.context, self.timeout_s)


@dataclass(frozen=True, slots=True)
class DiscoveredKeys:
    """The JWKS an OpenID provider names in its discovery document (read each refresh, so
    a provider that moves its ``jwks_uri`` is followed)."""

    session: aiohttp.ClientSession
    issuer: str
    context: ssl.SSLContext
    timeout_s: float

    @property
    def description(self) -> str:
        return f"{self.issuer.rstrip('/')}/.well-known/openid-configuration"

    async def read(self) -> bytes:
        body = await _get(self.session, self.description, self.context, self.timeout_s)
        try:
            document = json.loads(body)
        except ValueError as exc:
            raise KeySetError(f"{self.description} is not JSON") from exc
        if not isinstance(document, dict) or document.get("issuer") != self.issuer:
            raise KeySetError(f"{self.description} names another issuer than {self.issuer}")
        uri = document.get("jwks_uri")
        if not isinstance(uri, str) or not uri.startswith("https://"):
            raise KeySetError(f"{self.description} names no https jwks_uri")
        return await _get(self.session, uri, self.context, self.timeout_s)


def _key_type(jwk: Mapping[str, Any]) -> tuple[str, str | None]:
    kty = jwk.get("kty")
    return (str(kty), None if kty == "RSA" else jwk.get("crv"))


def parse_jwks(body: bytes) -> dict[str | None, Mapping[str, Any]]:
    """The usable public keys of a JWKS document, by ``kid``; KeySetError when none is."""
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise KeySetError("the key set is not JSON") from exc
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list):
        raise KeySetError('the key set has no "keys" list')
    usable: dict[str | None, Mapping[str, Any]] = {}
    for jwk in keys[:MAX_KEYS]:
        if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig":
            continue
        if _key_type(jwk) not in ALGORITHMS_BY_KEY_TYPE or "d" in jwk:
            continue  # a symmetric or private key has no place in a published key set
        kid = jwk.get("kid")
        try:
            jwt.PyJWK(jwk)  # parses, or the key is dropped
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
            continue
        usable[kid if isinstance(kid, str) else None] = jwk
    if not usable:
        raise KeySetError("the key set holds no usable signing key")
    return usable


class KeySet:
    """``await keys.key(kid, alg)`` -> the ``PyJWK`` to verify a token of this issuer."""

    def __init__(
        self,
        name: str,
        source: KeySource,
        refresh_s: float,
        min_interval_s: float,
        *,
        max_age_s: float = math.inf,
        clock: Callable[[], float] = time.monotonic,
        on_fetch: Callable[[bool], None] = lambda _ok: None,
    ) -> None:
        """``on_fetch(ok)`` is told of every read of the source (the metrics)."""
        self.name = name
        self._source = source
        if isinstance(source, FileKeys):  # a file costs a stat: follow it closely
            refresh_s = min_interval_s = FILE_RECHECK_S
        self._refresh_s = refresh_s
        self._min_interval_s = min_interval_s
        self._max_age_s = max_age_s
        self._clock = clock
        self._on_fetch = on_fetch
        self._keys: dict[str | None, Mapping[str, Any]] = {}
        self._verifiers: dict[tuple[str | None, str], jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._attempted_at = -math.inf
        self._stamp: tuple[int, int] | None = None
        self._problem = "not fetched yet"
        self._lock = asyncio.Lock()
        self.fetches = 0
        """How many times the source was read (for tests and the benchmark)."""

    def holds(self, kid: str | None) -> bool:
        """Whether the key ``kid`` is still published and the keys are not too old (a cached
        token's key may be gone, or no longer be known to be there)."""
        return kid in self._keys and not self._expired(self._clock())

    def _expired(self, now: float) -> bool:
        return self._fetched_at is not None and now - self._fetched_at > self._max_age_s

    async def _refresh(self, attempted: float) -> None:
        async with self._lock:
            if self._attempted_at != attempted:
                return  # another request refreshed while this one waited
            self._attempted_at = self._clock()
            source = self._source
            if isinstance(source, FileKeys):
                stamp = source.stamp()
                if stamp == self._stamp and self._fetched_at is not None:
                    self._fetched_at = self._attempted_at
                    return
                self._stamp = stamp
            self.fetches += 1
            try:
                keys = parse_jwks(await source.read())
            except KeySetError as exc:
                self._problem = f"{source.description}: {exc}"
                log.warning("keys of JWT issuer %s not refreshed: %s", self.name, self._problem)
                self._on_fetch(False)
                return
            self._on_fetch(True)
            if keys.keys() != self._keys.keys():
                log.info("keys of JWT issuer %s now: %s", self.name, sorted(map(str, keys)))
            self._keys, self._verifiers = keys, {}
            self._fetched_at = self._attempted_at

    def _due(self, now: float) -> bool:
        return now - self._attempted_at >= self._min_interval_s

    async def key(self, kid: str | None, alg: str) -> jwt.PyJWK:
        """The key ``kid`` for a token signed with ``alg``; JwtUnknownKeyError when the
        issuer does not publish it, IdentityUnavailableError when there are no keys."""
        now = self._clock()
        stale = self._fetched_at is None or now - self._fetched_at >= self._refresh_s
        if (stale or not self._has(kid)) and self._due(now):
            await self._refresh(self._attempted_at)
        if self._fetched_at is None:
            raise IdentityUnavailableError(
                f"keys of JWT issuer {self.name} unavailable: {self._problem}"
            )
        if self._expired(self._clock()):
            raise IdentityUnavailableError(
                f"keys of JWT issuer {self.name} unavailable: not refreshed for more than "
                f"{self._max_age_s:g} s (jwt.keys_max_age_s): {self._problem}"
            )
        if not self._has(kid):
            raise JwtUnknownKeyError(
                f"the JWT names a signing key issuer {self.name} does not publish"
            )
        return self._verifier(kid, alg)

    def _has(self, kid: str | None) -> bool:
        # A token without a kid is verified by the issuer's only key, when it has one.
        return kid in self._keys if kid is not None else len(self._keys) == 1

    def _verifier(self, kid: str | None, alg: str) -> jwt.PyJWK:
        if kid not in self._keys:
            kid = next(iter(self._keys))
        found = self._verifiers.get((kid, alg))
        if found is not None:
            return found
        jwk = self._keys[kid]
        if alg not in ALGORITHMS_BY_KEY_TYPE[_key_type(jwk)] or jwk.get("alg", alg) != alg:
            raise JwtAlgorithmError(f"the JWT's alg {alg} does not match its signing key")
        verifier = self._verifiers[(kid, alg)] = jwt.PyJWK(dict(jwk), algorithm=alg)
        return verifier
