"""RevocationList: the client CA's CRL (``tls.client_crl_file``), reread when the file changes.

Revocation is checked here, per request, rather than by OpenSSL in the handshake: a CRL
given to an ``SSLContext`` is fixed until a restart, and a revoked certificate refused in
the handshake leaves no audit record. Here the refusal is a 401 with the serial number in
its reason, recorded like every other, and a new CRL takes effect within
``RECHECK_S`` of being written (atomically: write a new file and rename it over the old).

It fails closed. A CRL that cannot be read, does not parse, is not signed by a CA of
``tls.client_ca_file``, or is past its ``nextUpdate`` refuses every certificate identity
with 503 (``identity_unavailable``) until a good one is in place: whether a certificate
was revoked cannot be decided then. At start-up the same problems stop ``modgate serve``.
"""

import datetime as dt
import logging
import os
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
class _Loaded:
    stamp: tuple[int, int]
    crl: x509.CertificateRevocationList | None
    problem: str | None
    serials: frozenset[int] = frozenset()
    """The revoked serial numbers, gathered once: the CRL's own lookup walks its list
    (135 µs per request for 1,000 entries, bench/identity_bench.py), a set does not."""


def load_crl(path: Path, authorities: list[x509.Certificate]) -> x509.CertificateRevocationList:
    """The CRL in ``path`` (PEM or DER), checked to be signed by one of ``authorities``."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CrlError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        if b"-----BEGIN X509 CRL-----" in data:
            crl = x509.load_pem_x509_crl(data)
        else:
            crl = x509.load_der_x509_crl(data)
    except ValueError as exc:
        raise CrlError(f"{path} is not a CRL (PEM or DER): {exc}") from exc
    for authority in authorities:
        if authority.subject == crl.issuer and _signed_by(crl, authority.public_key()):
            return crl
    raise CrlError(
        f"{path} is not signed by a CA of tls.client_ca_file (issuer {crl.issuer.rfc4514_string()})"
    )


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
            crl = load_crl(self._path, self._authorities)
        except CrlError as exc:
            return _Loaded(stamp, None, str(exc))
        return _Loaded(stamp, crl, None, frozenset(revoked.serial_number for revoked in crl))

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
        if loaded.crl is None:
            raise IdentityUnavailableError(
                f"client certificate revocation unknown: {loaded.problem}"
            )
        next_update = loaded.crl.next_update_utc
        if next_update is not None and self._now() > next_update:
            raise IdentityUnavailableError(
                f"client certificate revocation unknown: the CRL {self._path} is out of date "
                f"since {next_update:%Y-%m-%dT%H:%M:%SZ}"
            )
        if cert.issuer != loaded.crl.issuer:
            return  # another CA of the bundle: this CRL says nothing of it
        if cert.serial_number in loaded.serials:
            raise CertificateRevokedError(
                f"the client certificate (serial {cert.serial_number:x}) is revoked"
            )
