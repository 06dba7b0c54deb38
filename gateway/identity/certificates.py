"""CertificateIdentifier: the identity a verified TLS client certificate proves.

The handshake has already checked the certificate against ``tls.client_ca_file`` (signature,
dates, chain, client-authentication usage); what is left is to read who it names, by the
documented mapping ``identity.cert_subject_from`` (first source present wins):

- ``uri``: the first URI SAN, e.g. a SPIFFE ID ``spiffe://corp.example/ci/builder``;
- ``dns``: the first DNS SAN;
- ``email``: the first e-mail (RFC 822) SAN;
- ``cn``: the subject's first common name.

Groups are the subject's organizational units (OU), in order. The identity's details
carry the serial number (hex) and the issuer's name, for policies and the audit record.
A certificate is parsed once (cached by its bytes); its expiry, and its revocation when
``tls.client_crl_file`` is set (``revocation.py``), are checked on every request, since a
kept-alive connection may outlive the certificate it was opened with, and a revocation
must not wait for a restart.
"""

import datetime as dt
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from cryptography import x509
from cryptography.x509.oid import NameOID

from ..errors import CertificateRevokedError, IdentityError
from .base import Identity
from .proof import RequestProof
from .revocation import RevocationList
from .watched import WatchedFile

_PARSED_CERTIFICATES = 4096
"""Distinct client certificates remembered parsed; a fleet of CI runners stays inside."""


@dataclass(frozen=True, slots=True)
class CertificateSubject:
    identity: Identity
    certificate: x509.Certificate

    @property
    def not_after(self) -> dt.datetime:
        return self.certificate.not_valid_after_utc


SanKind = type[x509.UniformResourceIdentifier] | type[x509.DNSName] | type[x509.RFC822Name]


def _first_san(cert: x509.Certificate, kind: SanKind) -> str | None:
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    values = names.get_values_for_type(kind)
    return str(values[0]) if values else None


def _common_name(cert: x509.Certificate) -> str | None:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else None


_SOURCES = {
    "uri": lambda cert: _first_san(cert, x509.UniformResourceIdentifier),
    "dns": lambda cert: _first_san(cert, x509.DNSName),
    "email": lambda cert: _first_san(cert, x509.RFC822Name),
    "cn": _common_name,
}


def certificate_subject(der: bytes, order: Sequence[str]) -> CertificateSubject:
    """Who the certificate ``der`` names, read in ``order``; IdentityError when it names
    no one by any of those sources (a certificate is never an anonymous request)."""
    cert = x509.load_der_x509_certificate(der)
    subject = next((found for source in order if (found := _SOURCES[source](cert))), None)
    if not subject:
        raise IdentityError(
            f"the client certificate names no subject by {', '.join(order)} "
            "(identity.cert_subject_from)"
        )
    units = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    groups = tuple(dict.fromkeys(str(unit.value) for unit in units))
    details = (
        ("serial", f"{cert.serial_number:x}"),  # as CRLs and `openssl x509 -serial` name it
        ("issuer", cert.issuer.rfc4514_string()),
    )
    return CertificateSubject(Identity(subject, groups, "mtls", details), cert)


class CertificateIdentifier:
    """Identity from the verified client certificate, when the request came with one.

    ``denied``: serial numbers refused whoever signed them (``tls.client_deny_serials_file``);
    ``groups``: the groups of each subject, instead of its OUs (``identity.cert_groups_file``;
    a subject it does not list has none)."""

    def __init__(
        self,
        order: Sequence[str],
        revocations: RevocationList | None = None,
        *,
        denied: WatchedFile[frozenset[int]] | None = None,
        groups: WatchedFile[Mapping[str, tuple[str, ...]]] | None = None,
    ) -> None:
        self._subject = functools.lru_cache(maxsize=_PARSED_CERTIFICATES)(
            functools.partial(certificate_subject, order=tuple(order))
        )
        self._revocations = revocations
        self._denied = denied
        self._groups = groups

    async def identify(self, proof: RequestProof) -> Identity | None:
        if not proof.peer_certificates:
            return None
        found = self._subject(proof.peer_certificates[0])
        if dt.datetime.now(dt.UTC) > found.not_after:
            raise IdentityError(
                f"the client certificate expired at {found.not_after:%Y-%m-%dT%H:%M:%SZ}"
            )
        if self._revocations is not None:
            self._revocations.check(found.certificate)
        serial = found.certificate.serial_number
        if self._denied is not None and serial in self._denied.current():
            raise CertificateRevokedError(
                f"the client certificate (serial {serial:x}) is on the deny list"
            )
        identity = found.identity
        if self._groups is not None:
            subject = identity.subject or ""
            identity = replace(identity, groups=self._groups.current().get(subject, ()))
        if proof.forwarded_by is not None:  # the front proxy's handshake, not modgate's
            forwarded = ("forwarded_by", proof.forwarded_by)
            identity = replace(identity, details=(*identity.details, forwarded))
        return identity
