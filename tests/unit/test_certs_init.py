"""`modgate certs init DIR --client NAME=GROUP,...`: client certificates for named subjects
and groups, short-lived by default, that modgate's certificate mapping reads back as the
identity they were made for."""

from __future__ import annotations

import datetime as dt
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509

from gateway.certs import CLIENT_VALIDITY, ClientSpec, init_dev_pki
from gateway.identity.base import Identity
from gateway.identity.certificates import certificate_subject
from gateway.settings import CERT_SUBJECT_SOURCES
from tests.support.cli import run_modgate

SPIFFE = "spiffe://corp.example/ci/builder"


def identity_of(path: Path) -> Identity:
    der = ssl.PEM_cert_to_DER_cert(path.read_text())
    identity = certificate_subject(der, CERT_SUBJECT_SOURCES).identity
    return Identity(identity.subject, identity.groups, identity.method)  # without details


def test_named_clients_get_certificates_modgate_reads_as_them(tmp_path: Path) -> None:
    done = run_modgate(
        "certs", "init", str(tmp_path), "--client", "alice=developers,release",
        "--client", f"{SPIFFE}=ci",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    alice = tmp_path / "client-alice.pem"
    builder = tmp_path / "client-spiffe___corp.example_ci_builder.pem"
    assert identity_of(alice) == Identity("alice", ("developers", "release"), "mtls")
    assert identity_of(builder) == Identity(SPIFFE, ("ci",), "mtls")
    assert f"client alice groups=developers,release {alice}" in done.stdout
    for key in (tmp_path / "client-alice-key.pem", tmp_path / "client-key.pem"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_client_certificates_are_short_lived_by_default(tmp_path: Path) -> None:
    pki = init_dev_pki(tmp_path, clients=(ClientSpec("bob"),))
    for path in (pki.client_cert, pki.clients[0].cert):
        cert = x509.load_pem_x509_certificate(path.read_bytes())
        lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
        assert lifetime <= CLIENT_VALIDITY + dt.timedelta(minutes=5)


def test_client_days_sets_the_validity(tmp_path: Path) -> None:
    done = run_modgate("certs", "init", str(tmp_path), "--client", "carol", "--client-days", "1")
    assert done.returncode == 0, done.stderr
    cert = x509.load_pem_x509_certificate((tmp_path / "client-carol.pem").read_bytes())
    assert cert.not_valid_after_utc - cert.not_valid_before_utc <= dt.timedelta(days=1, minutes=5)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--client", "=developers"], "expected NAME or NAME=GROUP,GROUP"),
        (["--client", "a/b", "--client", "a_b"], "would share a file name"),
        (["--client", "x", "--client-days", "0"], "--client-days 0: must be positive"),
    ],
)
def test_bad_client_requests_are_refused_and_write_nothing(
    tmp_path: Path, args: list[str], message: str
) -> None:
    done = run_modgate("certs", "init", str(tmp_path / "out"), *args)
    assert done.returncode == 2
    assert message in done.stderr
    assert not (tmp_path / "out").exists()
