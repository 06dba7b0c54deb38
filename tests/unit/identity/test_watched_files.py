"""Files an operator edits on a running gateway: the deny list of certificate serials and
the groups of certificate subjects take effect within a second, and a broken file fails
closed (503) until it is fixed."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest
from cryptography import x509

from gateway.errors import CertificateRevokedError, IdentityUnavailableError
from gateway.identity import watched
from gateway.identity.base import Identity
from gateway.identity.certificates import CertificateIdentifier
from gateway.identity.proof import RequestProof
from gateway.identity.watched import WatchedFile, parse_groups, parse_serials
from gateway.settings import CERT_SUBJECT_SOURCES
from tests.unit.identity.test_certificates import certificate


@pytest.fixture(autouse=True)
def recheck_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watched, "RECHECK_S", 0.0)


def replace(path: Path, text: str) -> None:
    """As an operator should: a new file renamed over the old one."""
    new = path.with_suffix(".new")
    new.write_text(text)
    os.replace(new, path)


def identify(identifier: CertificateIdentifier, der: bytes) -> Identity:
    found = asyncio.run(identifier.identify(RequestProof((), "127.0.0.1", (der,))))
    assert found is not None
    return found


def serial_of(der: bytes) -> int:
    return x509.load_der_x509_certificate(der).serial_number


def test_serials_parse_in_the_usual_spellings() -> None:
    text = b"# revoked laptops\n3f:A2:01\n  0x\n\nABCDEF  # stolen\n"
    with pytest.raises(ValueError, match="line 3"):
        parse_serials(text)
    assert parse_serials(b"3f:A2:01\nABCDEF # stolen\n") == {0x3FA201, 0xABCDEF}


def test_a_serial_added_to_the_deny_list_is_refused_at_once(tmp_path: Path) -> None:
    der = certificate(cn="laptop")
    path = tmp_path / "deny.txt"
    path.write_text("# none yet\n")
    identifier = CertificateIdentifier(
        CERT_SUBJECT_SOURCES, denied=WatchedFile(str(path), parse_serials, "deny list")
    )
    assert identify(identifier, der) is not None
    replace(path, f"{serial_of(der):x}\n")
    with pytest.raises(CertificateRevokedError, match="on the deny list") as refused:
        identify(identifier, der)
    assert refused.value.status == 401 and refused.value.code == "certificate_revoked"


def test_a_broken_deny_list_fails_closed_until_fixed(tmp_path: Path) -> None:
    der = certificate(cn="laptop")
    path = tmp_path / "deny.txt"
    path.write_text("")
    identifier = CertificateIdentifier(
        CERT_SUBJECT_SOURCES, denied=WatchedFile(str(path), parse_serials, "deny list")
    )
    replace(path, "not-hex\n")
    with pytest.raises(IdentityUnavailableError, match="deny list unusable") as refused:
        identify(identifier, der)
    assert refused.value.status == 503
    replace(path, "\n")
    assert identify(identifier, der) is not None


def test_a_broken_file_refuses_to_start() -> None:
    with pytest.raises(ValueError, match="cannot read"):
        WatchedFile("/nonexistent/deny.txt", parse_serials, "deny list")


def test_the_groups_file_names_the_groups_instead_of_the_ous(tmp_path: Path) -> None:
    path = tmp_path / "groups.json"
    path.write_text(json.dumps({"builder": ["ci", "developers"]}))
    identifier = CertificateIdentifier(
        CERT_SUBJECT_SOURCES, groups=WatchedFile(str(path), parse_groups, "certificate groups")
    )
    found = identify(identifier, certificate(cn="builder", units=("admins",)))
    assert found.groups == ("ci", "developers")
    assert identify(identifier, certificate(cn="stranger", units=("admins",))).groups == ()
    replace(path, json.dumps({"builder": ["ci"]}))
    assert identify(identifier, certificate(cn="builder")).groups == ("ci",)


@pytest.mark.parametrize("text", ["[]", '{"builder": "ci"}', '{"builder": [1]}', "{"])
def test_a_groups_file_of_another_shape_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_groups(text.encode())
