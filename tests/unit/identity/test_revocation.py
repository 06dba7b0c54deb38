"""The client CRL: revoked serials refused, a new CRL in force without a restart, and no
decision (503) when the CRL cannot be trusted or is out of date."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from gateway.errors import CertificateRevokedError, ConfigError, IdentityUnavailableError
from gateway.identity import revocation
from gateway.identity.revocation import CrlError, RevocationList
from gateway.identity.stage import open_identity
from gateway.identity.tokens import StoredToken
from gateway.settings import IdentitySettings, TlsSettings
from tests.support.x509 import NOW, PEM, TestAuthority


class TokenStoreNeverRead:
    async def find(self, token_id: str) -> StoredToken | None:
        raise AssertionError("no token is looked up here")


class Ca(TestAuthority):
    """The test CA, its leaf certificates numbered by the test."""

    def leaf(self, serial: int) -> x509.Certificate:
        return self.certificate(f"c{serial}", serial=serial)[0]


@pytest.fixture
def ca() -> Ca:
    return Ca.create("client CA")


@pytest.fixture
def files(tmp_path: Path, ca: Ca) -> tuple[Path, Path]:
    bundle = tmp_path / "client-ca.pem"
    bundle.write_bytes(ca.cert.public_bytes(serialization.Encoding.PEM))
    return bundle, tmp_path / "client.crl"


def replace(path: Path, data: bytes) -> None:
    """As an operator should: a new file renamed over the old one."""
    fresh = path.with_suffix(".new")
    fresh.write_bytes(data)
    os.replace(fresh, path)


@pytest.mark.parametrize("pem", [True, False], ids=["pem", "der"])
def test_a_revoked_serial_is_refused_and_others_pass(
    ca: Ca, files: tuple[Path, Path], pem: bool
) -> None:
    bundle, crl = files
    crl.write_bytes(ca.crl(7, encoding=PEM if pem else serialization.Encoding.DER))
    revocations = RevocationList(str(crl), str(bundle))
    revocations.check(ca.leaf(8))
    with pytest.raises(CertificateRevokedError, match="serial 7") as caught:
        revocations.check(ca.leaf(7))
    assert (caught.value.status, caught.value.code) == (401, "certificate_revoked")


def test_a_new_crl_takes_effect_without_a_restart(
    ca: Ca, files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(revocation, "RECHECK_S", 0.0)
    bundle, crl = files
    crl.write_bytes(ca.crl())
    revocations = RevocationList(str(crl), str(bundle))
    revocations.check(ca.leaf(9))
    replace(crl, ca.crl(9, 10))
    with pytest.raises(CertificateRevokedError):
        revocations.check(ca.leaf(9))


def test_a_crl_of_another_ca_is_refused_at_start(ca: Ca, files: tuple[Path, Path]) -> None:
    bundle, crl = files
    crl.write_bytes(Ca.create("client CA").crl())  # the same name, another key: a forgery
    with pytest.raises(CrlError, match=r"not signed by a CA of tls\.client_ca_file"):
        RevocationList(str(crl), str(bundle))


@pytest.mark.parametrize(
    "broken",
    [b"not a crl", None, "forged"],
    ids=["garbage", "deleted", "forged"],
)
def test_a_crl_that_goes_bad_refuses_every_certificate_with_503(
    ca: Ca, files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, broken: bytes | str | None
) -> None:
    monkeypatch.setattr(revocation, "RECHECK_S", 0.0)
    bundle, crl = files
    crl.write_bytes(ca.crl())
    revocations = RevocationList(str(crl), str(bundle))
    if broken is None:
        crl.unlink()
    else:
        replace(crl, Ca.create("client CA").crl() if broken == "forged" else broken)  # type: ignore[arg-type]
    with pytest.raises(IdentityUnavailableError, match="revocation unknown") as caught:
        revocations.check(ca.leaf(1))
    assert caught.value.status == 503
    replace(crl, ca.crl())  # a good one again: identities are back
    revocations.check(ca.leaf(1))


def test_an_out_of_date_crl_decides_nothing(ca: Ca, files: tuple[Path, Path]) -> None:
    bundle, crl = files
    crl.write_bytes(ca.crl(next_update=NOW + dt.timedelta(hours=1)))
    later = RevocationList(str(crl), str(bundle), now=lambda: NOW + dt.timedelta(hours=2))
    with pytest.raises(IdentityUnavailableError, match="out of date since"):
        later.check(ca.leaf(1))


def test_a_certificate_of_another_ca_in_the_bundle_is_not_judged_by_this_crl(
    ca: Ca, files: tuple[Path, Path]
) -> None:
    bundle, crl = files
    other = Ca.create("second client CA")
    bundle.write_bytes(bundle.read_bytes() + other.cert.public_bytes(serialization.Encoding.PEM))
    crl.write_bytes(ca.crl(5))
    RevocationList(str(crl), str(bundle)).check(other.leaf(5))


def test_modgate_does_not_start_on_an_unusable_crl(ca: Ca, files: tuple[Path, Path]) -> None:
    """open_identity (modgate serve's start) names the key instead of serving without it."""
    bundle, crl = files
    crl.write_bytes(b"-----BEGIN X509 CRL-----\nbroken\n-----END X509 CRL-----\n")
    tls = TlsSettings(client_cert="required", client_ca_file=str(bundle), client_crl_file=str(crl))

    async def start() -> None:
        async with open_identity(IdentitySettings(), TokenStoreNeverRead(), tls):
            raise AssertionError("started with an unusable CRL")

    with pytest.raises(ConfigError, match=r"tls\.client_crl_file: .* is not a CRL"):
        asyncio.run(start())


def test_one_crl_per_ca_in_one_pem_file(tmp_path: Path) -> None:
    """Two client CAs, each with its own CRL: each certificate is judged by its issuer's."""
    first, second = Ca.create("client CA one"), Ca.create("client CA two")
    bundle = tmp_path / "client-ca.pem"
    bundle.write_bytes(first.cert.public_bytes(PEM) + second.cert.public_bytes(PEM))
    crl = tmp_path / "client.crl"
    crl.write_bytes(first.crl(7) + second.crl(8))
    revocations = RevocationList(str(crl), str(bundle))
    revocations.check(first.leaf(8))
    revocations.check(second.leaf(7))
    for ca, serial in ((first, 7), (second, 8)):
        with pytest.raises(CertificateRevokedError, match=f"serial {serial}"):
            revocations.check(ca.leaf(serial))


def test_two_crls_of_one_ca_are_refused(ca: Ca, files: tuple[Path, Path]) -> None:
    bundle, crl = files
    crl.write_bytes(ca.crl(7) + ca.crl())
    with pytest.raises(CrlError, match="two CRLs of one CA"):
        RevocationList(str(crl), str(bundle))
