"""Behind a TLS-terminating front proxy (issue 10, point 5): X-Forwarded-Client-Cert and
X-Forwarded-For count only from ``server.trusted_proxies``; from anyone else the
certificate header is a spoofing attempt, refused 401 and audited, and nothing is
forwarded upstream.

The test plays the proxy from 127.0.0.1 against a real `modgate serve`, sending a real
certificate (made with `cryptography`) in Envoy's format: ``Hash=<sha256>;Cert="<URL-encoded
PEM>";Subject="..."``. Whether the proxy is trusted is the gateway's setting.
"""

from __future__ import annotations

import hashlib
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from gateway.certs import DevPki
from tests.hardening.conftest import ServeOwn
from tests.support.audit import audit_rows
from tests.support.gateway import GatewayProcess
from tests.support.postgres import ThrowawayPostgres
from tests.support.upstream import UpstreamServer
from tests.support.x509 import TestAuthority

pytestmark = [pytest.mark.postgres, pytest.mark.opa]

LIST = "/example.com/hello/@v/list"


@pytest.fixture(scope="module")
def mesh_ca() -> TestAuthority:
    return TestAuthority.create("mesh CA")


def xfcc(authority: TestAuthority, name: str, *, units: tuple[str, ...] = ()) -> str:
    cert, _ = authority.certificate(name, units=units)
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    digest = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    subject = cert.subject.rfc4514_string()
    return f'By=spiffe://corp.example/modgate;Hash={digest};Cert="{quote(pem)}";Subject="{subject}"'


def get(gateway: GatewayProcess, pki: DevPki, headers: dict[str, str]) -> httpx.Response:
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    with httpx.Client(base_url=gateway.url, verify=context, timeout=10) as client:
        return client.get(LIST, headers=headers)


def record(postgres: ThrowawayPostgres, response: httpx.Response) -> dict[str, Any]:
    rows = audit_rows(postgres.libpq_dsn(), "request_id = $1", response.headers["X-Request-Id"])
    assert len(rows) == 1
    return rows[0]


def behind(serve_own: ServeOwn, tmp_path: Path, mesh_ca: TestAuthority, proxies: str) -> Any:
    return serve_own(
        MODGATE_SERVER_TRUSTED_PROXIES=proxies,
        MODGATE_IDENTITY_FORWARDED_CLIENT_CERT="true",
        MODGATE_IDENTITY_FORWARDED_CA_FILE=str(mesh_ca.write(tmp_path / "mesh-ca.pem")),
    )


@pytest.fixture
def trusted(
    serve_own: ServeOwn, tmp_path: Path, mesh_ca: TestAuthority
) -> Iterator[GatewayProcess]:
    with behind(serve_own, tmp_path, mesh_ca, "127.0.0.0/8") as gateway:
        yield gateway


@pytest.fixture
def untrusted(
    serve_own: ServeOwn, tmp_path: Path, mesh_ca: TestAuthority
) -> Iterator[GatewayProcess]:
    with behind(serve_own, tmp_path, mesh_ca, "192.0.2.10") as gateway:  # not this test
        yield gateway


def test_a_trusted_proxy_names_the_client_and_its_certificate(
    trusted: GatewayProcess, pki: DevPki, postgres: ThrowawayPostgres, mesh_ca: TestAuthority
) -> None:
    headers = {
        "X-Forwarded-Client-Cert": xfcc(mesh_ca, "builder", units=("developers",)),
        "X-Forwarded-For": "198.51.100.7, 203.0.113.9",  # the client wrote the first
    }
    response = get(trusted, pki, headers)
    assert response.status_code == 200, response.text
    row = record(postgres, response)
    assert (row["subject"], row["groups"], row["auth_method"]) == (
        "builder",
        ["developers"],
        "mtls",
    )
    assert row["client_address"] == "203.0.113.9"  # the right-most hop not a trusted proxy


def test_a_forwarded_certificate_of_another_ca_is_refused(
    trusted: GatewayProcess, pki: DevPki, postgres: ThrowawayPostgres
) -> None:
    impostor = TestAuthority.create("mesh CA")  # the same name, another key
    response = get(trusted, pki, {"X-Forwarded-Client-Cert": xfcc(impostor, "builder")})
    assert response.status_code == 401
    row = record(postgres, response)
    assert row["error_code"] == "forwarded_identity_refused"
    assert "not issued by a CA of identity.forwarded_ca_file" in row["reasons"][0]


def test_a_forwarded_certificate_from_an_untrusted_address_is_a_spoofing_attempt(
    untrusted: GatewayProcess, pki: DevPki, postgres: ThrowawayPostgres,
    mesh_ca: TestAuthority, public_upstream: UpstreamServer,
) -> None:  # fmt: skip
    before = len(public_upstream.requests)
    headers = {
        "X-Forwarded-Client-Cert": xfcc(mesh_ca, "admin", units=("modgate-operators",)),
        "X-Forwarded-For": "203.0.113.9",
    }
    response = get(untrusted, pki, headers)
    assert response.status_code == 401
    assert "not a trusted proxy" in response.text
    row = record(postgres, response)
    assert (row["error_code"], row["subject"]) == ("forwarded_identity_refused", None)
    assert row["client_address"] == "127.0.0.1"  # X-Forwarded-For ignored from it
    assert len(public_upstream.requests) == before


def test_x_forwarded_for_from_an_untrusted_address_is_ignored(
    untrusted: GatewayProcess, pki: DevPki, postgres: ThrowawayPostgres
) -> None:
    response = get(untrusted, pki, {"X-Forwarded-For": "203.0.113.9"})
    assert response.status_code == 401  # anonymous, asked for credentials
    assert record(postgres, response)["client_address"] == "127.0.0.1"


def test_forwarded_certificates_are_refused_when_the_setting_is_off(
    serve_own: ServeOwn, pki: DevPki, postgres: ThrowawayPostgres, mesh_ca: TestAuthority
) -> None:
    with serve_own(MODGATE_SERVER_TRUSTED_PROXIES="127.0.0.1") as gateway:
        response = get(gateway, pki, {"X-Forwarded-Client-Cert": xfcc(mesh_ca, "builder")})
    assert response.status_code == 401
    assert record(postgres, response)["error_code"] == "forwarded_identity_refused"
