"""open_identity: the identify stage, opened from the ``[identity]`` settings.

Its identifiers are tried in order on a request's ``RequestProof``: the API token
(``tokens.py``, read from ``store``) and the JWT of a trusted issuer (``jwts.py``, keys
from ``jwks.py``) from the Authorization header, then the verified client certificate
(``certificates.py``). A request with both is identified by its header: a developer's own
token on a shared runner's certificate names the developer.

The stage owns one aiohttp session for every issuer's key set (opened only when an issuer
fetches its keys over https), closed with the stage.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from starlette.requests import Request

from ..errors import ConfigError
from ..http.tls import client_context
from ..observability import Metrics
from ..settings import IdentitySettings, JwtIssuerSettings, JwtSettings, TlsSettings
from .base import Identifier, Identity
from .certificates import CertificateIdentifier
from .identify import identify
from .jwks import DiscoveredKeys, FileKeys, KeySet, KeySource, UrlKeys
from .jwts import Issuer, JwtIdentifier
from .proof import ProofReader, RequestProof
from .ratelimit import FailedAuthLimiter
from .revocation import CrlError, RevocationList
from .tokens import TokenIdentifier, TokenStore
from .watched import WatchedFile, parse_groups, parse_serials


@dataclass(frozen=True, slots=True)
class IdentityStage:
    identifiers: tuple[Identifier, ...]
    failures: FailedAuthLimiter
    """One budget of bad credentials per client, shared by the proxy and /readyz, /metrics."""

    expected: str = "a modgate API token"
    """What a request's unrecognised credentials should have been (in the 401 reason)."""
    reader: ProofReader = field(default_factory=ProofReader)
    """Reads a request's proof, believing forwarded headers from trusted proxies only."""

    def proof(self, request: Request) -> RequestProof:
        """What ``request`` presents (its client address behind a trusted proxy)."""
        return self.reader.read(request)

    async def identify(self, proof: RequestProof) -> Identity:
        """ANONYMOUS, or the proven Identity; IdentityError (401, 429, 503) otherwise."""
        return await identify(proof, self.identifiers, self.failures, self.expected)


def _issuer(
    settings: JwtIssuerSettings,
    jwt: JwtSettings,
    session: aiohttp.ClientSession | None,
    metrics: Metrics | None,
) -> Issuer:
    if settings.shared_secret_file:
        return Issuer(settings, secret=Path(settings.shared_secret_file).read_bytes().strip())
    source: KeySource
    if settings.jwks_file:
        source = FileKeys(Path(settings.jwks_file))
    else:
        if session is None:
            raise ConfigError(f"jwt issuer {settings.name}: no session to fetch its keys")
        context = client_context(settings.ca_file, f"ca_file of jwt issuer {settings.name}")
        timeout = jwt.fetch_timeout_s
        if settings.discovery:
            source = DiscoveredKeys(session, settings.issuer, context, timeout)
        else:
            source = UrlKeys(session, settings.jwks_url, context, timeout)

    def fetched(ok: bool) -> None:
        if metrics is not None:
            metrics.jwt_key_fetches.inc(issuer=settings.name, result="ok" if ok else "failed")

    keys = KeySet(
        settings.name,
        source,
        jwt.refresh_s,
        jwt.unknown_kid_interval_s,
        max_age_s=jwt.keys_max_age_s,
        on_fetch=fetched,
    )
    return Issuer(settings, keys=keys)


async def _stop(task: "asyncio.Task[None]") -> None:
    """Cancel ``task`` and wait for it: its connection goes back before the engine closes."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


RevocationFeed = Callable[[Callable[[str], None], Callable[[], None]], Coroutine[Any, Any, None]]
"""``feed(forget, forget_all)``: runs until cancelled, calling ``forget(token_id)`` for
each revoked token and ``forget_all()`` when revocations may have been missed."""


@asynccontextmanager
async def open_identity(
    settings: IdentitySettings,
    store: TokenStore,
    tls: TlsSettings | None = None,
    jwt: JwtSettings | None = None,
    trusted_proxies: tuple[str, ...] = (),
    token_revocations: RevocationFeed | None = None,
    metrics: Metrics | None = None,
) -> AsyncIterator[IdentityStage]:
    """``token_revocations``: a feed of API-token revocations (PostgreSQL's LISTEN/NOTIFY,
    ``audit/revocations.py``), run while the stage is open, that makes the token cache
    forget a revoked token at once."""
    jwt = JwtSettings() if jwt is None else jwt
    tokens = TokenIdentifier(store, settings.token_cache_s, settings.negative_cache_s)
    identifiers: list[Identifier] = [tokens]
    revocations = None
    if tls is not None and tls.client_crl_file:
        try:
            revocations = RevocationList(tls.client_crl_file, tls.client_ca_file)
        except CrlError as exc:
            raise ConfigError(f"tls.client_crl_file: {exc}") from exc
    try:
        denied = groups = None
        if tls is not None and tls.client_deny_serials_file:
            denied = WatchedFile(tls.client_deny_serials_file, parse_serials, "client deny list")
        if settings.cert_groups_file:
            groups = WatchedFile(settings.cert_groups_file, parse_groups, "certificate groups")
    except ValueError as exc:
        raise ConfigError(f"identity files: {exc}") from exc
    async with AsyncExitStack() as stack:
        if token_revocations is not None:
            feed = token_revocations(tokens.forget, tokens.forget_all)
            listening = asyncio.create_task(feed)
            stack.push_async_callback(_stop, listening)
        session = None
        if any(issuer.jwks_url or issuer.discovery for issuer in jwt.issuers):
            session = await stack.enter_async_context(aiohttp.ClientSession(trust_env=False))
        expected = "a modgate API token"
        if jwt.issuers:
            issuers = [_issuer(issuer, jwt, session, metrics) for issuer in jwt.issuers]
            identifiers.append(JwtIdentifier(issuers, jwt.cache_entries))
            expected += " or a JWT of a trusted issuer"
        identifiers.append(
            CertificateIdentifier(
                settings.cert_subject_from, revocations, denied=denied, groups=groups
            )
        )
        limiter = FailedAuthLimiter(settings.failed_auth_per_minute)
        forwarded_ca = settings.forwarded_ca_file if settings.forwarded_client_cert else ""
        try:
            reader = ProofReader.open(trusted_proxies, forwarded_ca)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"identity.forwarded_ca_file: no PEM CA bundle: {exc}") from exc
        yield IdentityStage(tuple(identifiers), limiter, expected, reader)
