"""mTLS on the client-facing port: only certificates of ``tls.client_ca_file`` get in, and
the one that does names the request's identity (issue 10, point 1).

Each case is a real TLS handshake with `modgate serve` (Python's ssl client, through httpx),
on the session's PostgreSQL, OPA and upstreams. The certificates are real X.509 made here
with `cryptography`: a CA of the test's own as ``tls.client_ca_file``, and a foreign CA
that signs certificates shaped exactly like the trusted ones. Whether a certificate got in
is read from the audit trail: the record of an identified request names its subject,
its groups and the method ``mtls``.
"""

from __future__ import annotations

import datetime as dt
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from gateway.certs import DevPki
from tests.conftest import Tokens
from tests.hardening.conftest import ServeOwn
from tests.support.audit import audit_rows, stored_input
from tests.support.gateway import GatewayProcess
from tests.support.metrics import scrape
from tests.support.postgres import ThrowawayPostgres
from tests.support.x509 import NOW, TestAuthority

pytestmark = [pytest.mark.postgres, pytest.mark.opa]

LIST = "/example.com/hello/@v/list"


@pytest.fixture(scope="module")
def trusted() -> TestAuthority:
    return TestAuthority.create("modgate test client CA")


@pytest.fixture(scope="module")
def foreign() -> TestAuthority:
    return TestAuthority.create("modgate test client CA")  # the same name, another key


@pytest.fixture
def certs(tmp_path: Path) -> Path:
    directory = tmp_path / "client-certs"
    directory.mkdir()
    return directory


def serve_mtls(serve_own: ServeOwn, trusted: TestAuthority, directory: Path, mode: str) -> Any:
    return serve_own(
        trusted.issue(directory, "probe"),
        MODGATE_TLS_CLIENT_CERT=mode,
        MODGATE_TLS_CLIENT_CA_FILE=str(trusted.write(directory / "client-ca.pem")),
    )


@pytest.fixture
def required(serve_own: ServeOwn, trusted: TestAuthority, certs: Path) -> Iterator[GatewayProcess]:
    with serve_mtls(serve_own, trusted, certs, "required") as gateway:
        yield gateway


@pytest.fixture
def optional(serve_own: ServeOwn, trusted: TestAuthority, certs: Path) -> Iterator[GatewayProcess]:
    with serve_mtls(serve_own, trusted, certs, "optional") as gateway:
        yield gateway


def get(
    gateway: GatewayProcess,
    pki: DevPki,
    cert: tuple[Path, Path] | None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    if cert is not None:
        context.load_cert_chain(*cert)
    with httpx.Client(base_url=gateway.url, verify=context, timeout=10) as client:
        return client.get(LIST, headers=headers)


def refused_handshake(gateway: GatewayProcess, pki: DevPki, cert: tuple[Path, Path] | None) -> str:
    """The error a client sees when the handshake (or the first read after it: TLS 1.3
    sends the server's verdict on the client certificate after the client's Finished)
    fails; the test fails if the request is answered."""
    with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)) as err:
        get(gateway, pki, cert)
    return str(err.value)


def record(postgres: ThrowawayPostgres, response: httpx.Response) -> dict[str, Any]:
    rows = audit_rows(postgres.libpq_dsn(), "request_id = $1", response.headers["X-Request-Id"])
    assert len(rows) == 1
    return rows[0]


def test_a_certificate_of_the_client_ca_names_the_identity(
    required: GatewayProcess, pki: DevPki, postgres: ThrowawayPostgres, trusted: TestAuthority,
    certs: Path,
) -> None:  # fmt: skip
    spiffe = "spiffe://corp.example/ci/builder"
    cert = trusted.issue(
        certs,
        "builder",
        units=("developers", "ci"),
        sans=(x509.UniformResourceIdentifier(spiffe), x509.DNSName("builder.corp.example")),
    )
    response = get(required, pki, cert)
    assert response.status_code == 200, response.text
    row = record(postgres, response)
    assert (row["subject"], row["groups"], row["auth_method"]) == (
        spiffe,  # the URI SAN comes first in the default identity.cert_subject_from
        ["developers", "ci"],
        "mtls",
    )
    identity = stored_input(postgres.libpq_dsn(), response.headers["X-Request-Id"])["identity"]
    serial = x509.load_pem_x509_certificate(cert[0].read_bytes()).serial_number
    assert identity["details"] == {"serial": f"{serial:x}", "issuer": "CN=modgate test client CA"}


def test_the_subject_order_is_the_operators(
    serve_own: ServeOwn, trusted: TestAuthority, certs: Path, pki: DevPki,
    postgres: ThrowawayPostgres,
) -> None:  # fmt: skip
    cert = trusted.issue(
        certs, "cn-name", sans=(x509.UniformResourceIdentifier("spiffe://corp.example/x"),)
    )
    ca = str(trusted.write(certs / "client-ca.pem"))
    with serve_own(
        trusted.issue(certs, "probe"),
        MODGATE_TLS_CLIENT_CERT="required",
        MODGATE_TLS_CLIENT_CA_FILE=ca,
        MODGATE_IDENTITY_CERT_SUBJECT_FROM="cn,uri",
    ) as gateway:
        response = get(gateway, pki, cert)
    assert record(postgres, response)["subject"] == "cn-name"


def handshake_failures(gateway: GatewayProcess, reason: str) -> float:
    sample = ("modgate_tls_handshake_failures_total", (("reason", reason),))
    return scrape(gateway.metrics_url).get(sample, 0.0)


def counted(gateway: GatewayProcess, reason: str, before: float) -> bool:
    """Whether the refusal was counted (the server's side of a refused handshake may end
    a moment after the client saw it)."""
    deadline = time.monotonic() + 5
    while handshake_failures(gateway, reason) <= before:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_no_certificate_is_refused_when_one_is_required(
    required: GatewayProcess, pki: DevPki
) -> None:
    before = handshake_failures(required, "client_certificate_missing")
    refused_handshake(required, pki, None)
    assert counted(required, "client_certificate_missing", before)
    assert (
        "TLS handshake refused (client_certificate_missing) from 127.0.0.1" in required.log_tail()
    )


def test_a_certificate_of_a_foreign_ca_is_refused(
    required: GatewayProcess, pki: DevPki, foreign: TestAuthority, certs: Path
) -> None:
    before = handshake_failures(required, "client_certificate_refused")
    refused_handshake(required, pki, foreign.issue(certs, "impostor", units=("developers",)))
    assert counted(required, "client_certificate_refused", before)


def test_an_expired_certificate_is_refused(
    required: GatewayProcess, pki: DevPki, trusted: TestAuthority, certs: Path
) -> None:
    expired = trusted.issue(certs, "expired", not_after=NOW - dt.timedelta(minutes=1))
    refused_handshake(required, pki, expired)


def test_a_server_certificate_of_the_same_ca_is_no_client_identity(
    required: GatewayProcess, pki: DevPki, trusted: TestAuthority, certs: Path
) -> None:
    server_only = trusted.issue(certs, "server", usage=ExtendedKeyUsageOID.SERVER_AUTH)
    refused_handshake(required, pki, server_only)


def test_optional_lets_a_request_without_a_certificate_in_as_anonymous(
    optional: GatewayProcess, pki: DevPki, postgres: ThrowawayPostgres
) -> None:
    response = get(optional, pki, None)
    assert response.status_code == 401  # anonymous: asked for credentials
    assert record(postgres, response)["auth_method"] == "anonymous"


def test_optional_still_refuses_a_foreign_certificate(
    optional: GatewayProcess, pki: DevPki, foreign: TestAuthority, certs: Path
) -> None:
    refused_handshake(optional, pki, foreign.issue(certs, "impostor"))


def test_a_token_on_a_certificate_connection_names_the_token_holder(
    optional: GatewayProcess, pki: DevPki, postgres: ThrowawayPostgres, trusted: TestAuthority,
    certs: Path, tokens: Tokens,
) -> None:  # fmt: skip
    runner = trusted.issue(certs, "shared-runner", units=("ci",))
    response = get(optional, pki, runner, {"Authorization": f"Bearer {tokens.alice}"})
    assert response.status_code == 200, response.text
    row = record(postgres, response)
    assert (row["subject"], row["auth_method"]) == ("alice", "token")
    identity = stored_input(postgres.libpq_dsn(), response.headers["X-Request-Id"])["identity"]
    assert identity["details"] == {"token_id": tokens.alice.split("_")[1]}


def test_a_certificate_revoked_while_the_gateway_runs_is_refused_and_audited(
    serve_own: ServeOwn, trusted: TestAuthority, certs: Path, pki: DevPki,
    postgres: ThrowawayPostgres,
) -> None:  # fmt: skip
    """Revocation without a restart: the CRL file is replaced under the running gateway."""
    cert_path, key_path = trusted.issue(certs, "laptop", units=("developers",))
    laptop = x509.load_pem_x509_certificate(cert_path.read_bytes())
    crl = certs / "client.crl"
    crl.write_bytes(trusted.crl())
    with serve_own(
        trusted.issue(certs, "probe"),
        MODGATE_TLS_CLIENT_CERT="required",
        MODGATE_TLS_CLIENT_CA_FILE=str(trusted.write(certs / "client-ca.pem")),
        MODGATE_TLS_CLIENT_CRL_FILE=str(crl),
    ) as gateway:
        assert get(gateway, pki, (cert_path, key_path)).status_code == 200
        fresh = certs / "client.crl.new"
        fresh.write_bytes(trusted.crl(laptop.serial_number))
        fresh.replace(crl)
        deadline = time.monotonic() + 10
        while (response := get(gateway, pki, (cert_path, key_path))).status_code == 200:
            assert time.monotonic() < deadline, "the new CRL never took effect"
            time.sleep(0.2)
    assert response.status_code == 401
    assert f"serial {laptop.serial_number:x}) is revoked" in response.text
    row = record(postgres, response)
    assert (row["error_code"], row["auth_method"]) == ("certificate_revoked", "anonymous")
