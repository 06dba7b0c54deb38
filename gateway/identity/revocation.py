"""RevocationList: the client CAs' CRLs (``tls.client_crl_file``), reread when the file changes.

The file holds one DER CRL, or PEM CRLs one after the other, one per client CA of
``tls.client_ca_file``; a certificate is checked against the CRL of its issuer.

Revocation is checked here, per request, rather than by OpenSSL in the handshake: a CRL
given to an ``SSLContext`` is fixed until a restart, and a revoked certificate refused in
the handshake leaves no audit record. Here the refusal is a 401 with the serial number in
its reason, recorded like every other, and a new CRL takes effect within
``RECHECK_S`` of being written (atomically: write a new file and rename it over the old).

It fails closed. A file that cannot be read, does not parse, holds a CRL not signed by a
CA of ``tls.client_ca_file`` (or two of one CA) refuses every certificate identity with
503 (``identity_unavailable``) until a good one is in place; a CRL past its
``nextUpdate`` refuses the certificates of its CA: whether they were revoked cannot be
decided then. At start-up the same problems stop ``modgate serve``. A CA of the bundle
with no CRL in the file revokes nothing.
"""

import datetime as dt
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from ..errors import CertificateRevokedError, IdentityUnavailableError

log = logging.getLogger(__name__)

RECHECK_S = 1.0
"""How often the file's size and modification time are looked at (one stat call)."""


class CrlError(Exception):
    """Why a CRL file cannot be used."""


@dataclass(frozen=True, slots=True)
class _Crl:
    crl: x509.CertificateRevocationList
    serials: frozenset[int]
    """The revoked serial numbers, gathered once: the CRL's own lookup walks its list
    (135 µs per request for 1,000 entries, bench/identity_bench.py), a set does not."""


@dataclass(frozen=True, slots=True)
class _Loaded:
    stamp: tuple[int, int]
    crls: dict[x509.Name, _Crl]
    """One CRL per issuing CA, by the CA's name."""
    problem: str | None


_PEM_CRL = re.compile(rb"-----BEGIN X509 CRL-----.+?-----END X509 CRL-----", re.DOTALL)


def load_crls(
    path: Path, authorities: list[x509.Certificate]
) -> list[x509.CertificateRevocationList]:
    """The CRLs in ``path`` (one DER CRL, or PEM CRLs one after the other: one per client
    CA), each checked to be signed by one of ``authorities``, at most one per CA."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CrlError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        if b"-----BEGIN X509 CRL-----" in data:
            crls = [x509.load_pem_x509_crl(block) for block in _PEM_CRL.findall(data)]
        else:
            crls = [x509.load_der_x509_crl(data)]
    except ValueError as exc:
        raise CrlError(f"{path} is not a CRL (PEM or DER): {exc}") from exc
    issuers = [crl.issuer for crl in crls]
    if len(set(issuers)) != len(issuers):
        raise CrlError(f"{path} holds two CRLs of one CA: keep the newest only")
    for crl in crls:
        if not any(
            authority.subject == crl.issuer and _signed_by(crl, authority.public_key())
            for authority in authorities
        ):
            raise CrlError(
                f"{path} is not signed by a CA of tls.client_ca_file "
                f"(issuer {crl.issuer.rfc4514_string()})"
            )
    return crls


def _signed_by(crl: x509.CertificateRevocationList, key: object) -> bool:
    try:
        return crl.is_signature_valid(key)  # type: ignore[arg-type]  # any CA key; X25519 etc. raise
    except (TypeError, ValueError):  # a key type a CRL cannot be signed with
        return False


class RevocationList:
    """Answers "is this certificate revoked?" from a CRL file kept current."""

    def __init__(
        self,
        path: str,
        ca_file: str,
        *,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._path = Path(path)
        self._authorities = x509.load_pem_x509_certificates(Path(ca_file).read_bytes())
        self._now = now
        self._checked_at = -RECHECK_S
        self._loaded = self._load(self._stamp())
        if self._loaded.problem is not None:
            raise CrlError(self._loaded.problem)

    def _stamp(self) -> tuple[int, int]:
        try:
            status = os.stat(self._path)
        except OSError:
            return (-1, -1)
        return (status.st_mtime_ns, status.st_size)

    def _load(self, stamp: tuple[int, int]) -> _Loaded:
        try:
            crls = load_crls(self._path, self._authorities)
        except CrlError as exc:
            return _Loaded(stamp, {}, str(exc))
        by_issuer = {
            crl.issuer: _Crl(crl, frozenset(revoked.serial_number for revoked in crl))
            for crl in crls
        }
        return _Loaded(stamp, by_issuer, None)

    def _current(self) -> _Loaded:
        moment = time.monotonic()
        if moment - self._checked_at >= RECHECK_S:
            self._checked_at = moment
            stamp = self._stamp()
            if stamp != self._loaded.stamp:
                self._loaded = self._load(stamp)
                if self._loaded.problem is None:
                    log.info("client CRL reloaded from %s", self._path)
                else:
                    log.error("client CRL unusable, certificate identities refused: %s",
                              self._loaded.problem)  # fmt: skip
        return self._loaded

    def check(self, cert: x509.Certificate) -> None:
        """Return if ``cert`` is not revoked; CertificateRevokedError if it is;
        IdentityUnavailableError when the CRL cannot tell."""
        loaded = self._current()
        if loaded.problem is not None:
            raise IdentityUnavailableError(
                f"client certificate revocation unknown: {loaded.problem}"
            )
        found = loaded.crls.get(cert.issuer)
        if found is None:
            return  # a CA of the bundle without a CRL here: nothing says it revoked any
        next_update = found.crl.next_update_utc
        if next_update is not None and self._now() > next_update:
            raise IdentityUnavailableError(
                f"client certificate revocation unknown: the CRL of "
                f"{cert.issuer.rfc4514_string()} in {self._path} is out of date "
                f"since {next_update:%Y-%m-%dT%H:%M:%SZ}"
            )
        if cert.serial_number in found.serials:
            raise CertificateRevokedError(
                f"the client certificate (serial {cert.serial_number:x}) is revoked"
            )
