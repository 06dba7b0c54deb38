"""Every request gets exactly one audit record, and the upstream never hears of a request
the trail does not hold (points 9 and 10), against the real server."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterator

import httpx
import pytest
from starlette.testclient import TestClient

from gateway.app import build_app
from gateway.audit import migrate
from gateway.observability import Metrics
from gateway.settings import AuditSettings, PolicySettings, Settings, TlsSettings, UpstreamSettings
from tests.conftest import Tokens
from tests.hardening.conftest import ServeOwn
from tests.support.audit import completed_row, only_row
from tests.support.gateway import GatewayProcess
from tests.support.locks import table_locks
from tests.support.opa import OpaServer
from tests.support.postgres import ThrowawayPostgres
from tests.support.upstream import UpstreamServer

pytestmark = [pytest.mark.postgres, pytest.mark.opa]

HELLO_LIST = "/example.com/hello/@v/list"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def record_of(postgres: ThrowawayPostgres, response: httpx.Response) -> dict[str, object]:
    return only_row(postgres.libpq_dsn(), response.headers["X-Request-Id"])


def completed_record_of(postgres: ThrowawayPostgres, response: httpx.Response) -> dict[str, object]:
    return completed_row(postgres.libpq_dsn(), response.headers["X-Request-Id"])


# --- point 9 ------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])
def test_every_method_but_get_is_a_recorded_405(
    client: httpx.Client,
    tokens: Tokens,
    postgres: ThrowawayPostgres,
    public_upstream: UpstreamServer,
    method: str,
) -> None:
    before = len(public_upstream.paths())
    response = client.request(method, HELLO_LIST, headers=bearer(tokens.alice), content=b"x")
    assert response.status_code == 405
    row = record_of(postgres, response)
    assert (row["decision"], row["error_code"], row["status"]) == (
        "deny",
        "method_not_allowed",
        405,
    )
    assert len(public_upstream.paths()) == before


def test_a_refusal_the_store_cannot_record_is_counted_and_logged(
    opa_server: OpaServer, public_upstream: UpstreamServer, caplog: pytest.LogCaptureFixture
) -> None:
    # given a gateway whose audit database has gone down
    with ThrowawayPostgres() as own:
        migrate.upgrade(own.dsn())
        metrics = Metrics()
        settings = Settings(
            tls=TlsSettings(plain_http=True),
            policy=PolicySettings(opa_url=opa_server.url, retries=0),
            audit=AuditSettings(database_url=own.dsn(), timeout_s=1),
            upstream=UpstreamSettings(public=(public_upstream.url,)),
        )
        with TestClient(build_app(settings, metrics)) as client:
            own.stop()
            # when anonymous and malformed requests are refused
            with caplog.at_level(logging.ERROR, logger="gateway.app"):
                anonymous = client.get(HELLO_LIST)
                malformed = client.get("/no-dot/@v/list")
    # then they are still answered, counted, and logged with their request ids
    assert (anonymous.status_code, malformed.status_code) == (401, 400)
    assert metrics.audit_unrecorded_refusals.value() == 2
    for response in (anonymous, malformed):
        assert response.headers["X-Request-Id"] in caplog.text


# --- point 10 -----------------------------------------------------------------------------


@pytest.fixture
def quick_audit_gateway(serve_own: ServeOwn) -> Iterator[GatewayProcess]:
    with serve_own(MODGATE_AUDIT_TIMEOUT_S="1") as process:
        yield process


@pytest.mark.parametrize(
    "path", ["/example.com/hello/@v/master.info", "/example.com/hello/@latest"]
)
def test_a_query_the_trail_cannot_record_never_reaches_the_upstream(
    quick_audit_gateway: GatewayProcess,
    tls_context: ssl.SSLContext,
    tokens: Tokens,
    postgres: ThrowawayPostgres,
    public_upstream: UpstreamServer,
    path: str,
) -> None:
    # given the audit store cannot take records (its table is locked)
    with (
        httpx.Client(base_url=quick_audit_gateway.url, verify=tls_context, timeout=20) as client,
        table_locks(postgres.libpq_dsn(), "audit_records"),
    ):
        public_upstream.clear()
        # when a revision query or @latest arrives
        response = client.get(path, headers=bearer(tokens.alice))
        # then it is refused before the upstream hears of it
        assert response.status_code == 503
        assert public_upstream.paths() == []


def test_a_query_is_recorded_as_asked_then_as_resolved(
    client: httpx.Client, tokens: Tokens, postgres: ThrowawayPostgres
) -> None:
    allowed = client.get("/example.com/hello/@v/master.info", headers=bearer(tokens.alice))
    denied = client.get("/example.com/insecure/@v/main.info", headers=bearer(tokens.alice))
    latest = client.get("/example.com/hello/@latest", headers=bearer(tokens.alice))
    assert (allowed.status_code, denied.status_code, latest.status_code) == (200, 403, 200)
    row = completed_record_of(postgres, allowed)
    assert (row["decision"], row["requested_version"], row["version"]) == (
        "allow",
        "master",
        "v1.1.0",
    )
    assert row["status"] == 200
    row = completed_record_of(postgres, denied)
    assert (row["decision"], row["requested_version"], row["version"]) == ("deny", "main", "v1.0.1")
    assert (row["status"], row["error_code"]) == (403, "denied_by_policy")
    assert any("blacklisted" in reason for reason in row["reasons"])  # type: ignore[attr-defined]
    row = completed_record_of(postgres, latest)
    assert (row["decision"], row["version"], row["status"]) == ("allow", "v1.1.0", 200)
