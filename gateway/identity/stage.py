"""open_identity: the identify stage, opened from the ``[identity]`` settings.

Its identifiers are tried in order on a request's ``RequestProof``: the API token
(``tokens.py``, read from ``store``) from the Authorization header, then the verified
client certificate (``certificates.py``). A request with both is identified by its
header: a developer's own token on a shared runner's certificate names the developer.
JWT adds an identifier here.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from ..errors import ConfigError
from ..settings import IdentitySettings, TlsSettings
from .base import Identifier, Identity
from .certificates import CertificateIdentifier
from .identify import identify
from .proof import RequestProof
from .ratelimit import FailedAuthLimiter
from .revocation import CrlError, RevocationList
from .tokens import TokenIdentifier, TokenStore


@dataclass(frozen=True, slots=True)
class IdentityStage:
    identifiers: tuple[Identifier, ...]
    failures: FailedAuthLimiter
    """One budget of bad credentials per client, shared by the proxy and /readyz, /metrics."""

    async def identify(self, proof: RequestProof) -> Identity:
        """ANONYMOUS, or the proven Identity; IdentityError (401, 429, 503) otherwise."""
        return await identify(proof, self.identifiers, self.failures)


@asynccontextmanager
async def open_identity(
    settings: IdentitySettings, store: TokenStore, tls: TlsSettings | None = None
) -> AsyncIterator[IdentityStage]:
    tokens = TokenIdentifier(store, settings.token_cache_s, settings.negative_cache_s)
    revocations = None
    if tls is not None and tls.client_crl_file:
        try:
            revocations = RevocationList(tls.client_crl_file, tls.client_ca_file)
        except CrlError as exc:
            raise ConfigError(f"tls.client_crl_file: {exc}") from exc
    certificates = CertificateIdentifier(settings.cert_subject_from, revocations)
    yield IdentityStage((tokens, certificates), FailedAuthLimiter(settings.failed_auth_per_minute))
