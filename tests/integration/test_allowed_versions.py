"""Steering to an allowed version, in the app's own process (so every branch is seen):
a list served without its blacklisted versions, a blocked @latest answered with the newest
allowed one, and each way that can fail leaving a refusal, never a blocked version served.

The app is the real one (build_app) on the session's PostgreSQL, OPA and upstream; the
upstream is a real HTTP server on 127.0.0.1 whose tree the test owns, so it can make the
upstream list nothing but blocked versions, or stop serving the .info a fallback needs.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from gateway.app import build_app
from gateway.observability import Metrics
from gateway.settings import (
    AuditSettings,
    IdentitySettings,
    PolicySettings,
    Settings,
    TlsSettings,
    UpstreamSettings,
)
from tests.conftest import Modules, Tokens
from tests.support.audit import audit_rows
from tests.support.opa import OpaServer
from tests.support.postgres import ThrowawayPostgres
from tests.support.upstream import UpstreamServer

pytestmark = [pytest.mark.postgres, pytest.mark.opa]

INSECURE = "example.com/insecure"


@pytest.fixture
def tree(tmp_path: Path, modules: Modules) -> Path:
    """A copy of the public upstream's tree the test may change."""
    root = tmp_path / "public"
    shutil.copytree(modules.public_root, root)
    return root


@pytest.fixture
def client(
    tree: Path, postgres: ThrowawayPostgres, opa_server: OpaServer, tokens: Tokens
) -> Iterator[TestClient]:
    with UpstreamServer(tree) as upstream:
        settings = Settings(
            tls=TlsSettings(plain_http=True),
            identity=IdentitySettings(token_cache_s=0, failed_auth_per_minute=0),
            policy=PolicySettings(opa_url=opa_server.url, retries=0),
            audit=AuditSettings(database_url=postgres.dsn()),
            upstream=UpstreamSettings(public=(upstream.url,), read_timeout_s=5),
        )
        with TestClient(build_app(settings, Metrics())) as test_client:
            test_client.headers["Authorization"] = f"Bearer {tokens.alice}"
            yield test_client


def record(postgres: ThrowawayPostgres, request_id: str) -> dict[str, object]:
    rows = audit_rows(postgres.libpq_dsn(), "request_id = $1", request_id)
    assert len(rows) == 1
    return rows[0]


def test_the_list_is_served_without_the_blacklisted_version(client: TestClient) -> None:
    response = client.get(f"/{INSECURE}/@v/list")
    assert response.status_code == 200
    assert response.text.split() == ["v1.0.0"]
    assert "ETag" not in response.headers


def test_a_list_without_blocked_versions_is_served_as_the_upstream_sent_it(
    client: TestClient, tree: Path
) -> None:
    assert client.get("/example.com/hello/@v/list").text.split() == ["v1.0.0", "v1.1.0"]
    (tree / "example.com" / "hello" / "@v" / "list").write_text("")
    assert client.get("/example.com/hello/@v/list").text == ""


def test_a_blocked_latest_is_answered_with_the_newest_allowed_version(
    client: TestClient, postgres: ThrowawayPostgres
) -> None:
    response = client.get(f"/{INSECURE}/@latest")
    assert response.status_code == 200 and response.json()["Version"] == "v1.0.0"
    row = record(postgres, response.headers["X-Request-Id"])
    assert row["version"] == "v1.0.0" and "answered with v1.0.0" in str(row["reasons"])


def test_a_latest_with_nothing_allowed_in_the_list_keeps_its_refusal(
    client: TestClient, tree: Path
) -> None:
    (tree / INSECURE / "@v" / "list").write_text("v1.0.1\n")
    response = client.get(f"/{INSECURE}/@latest")
    assert response.status_code == 403
    assert "example.com/insecure@v1.0.1 is blacklisted" in response.text


@pytest.mark.parametrize("broken", ["list", "info"])
def test_a_fallback_the_upstream_cannot_serve_keeps_the_refusal(
    client: TestClient, tree: Path, broken: str
) -> None:
    target = tree / INSECURE / "@v" / ("list" if broken == "list" else "v1.0.0.info")
    target.unlink()  # the upstream now answers 404 for it
    response = client.get(f"/{INSECURE}/@latest")
    assert response.status_code == 403
    assert "is blacklisted" in response.text


def test_an_ambiguous_info_of_the_fallback_keeps_the_refusal(
    client: TestClient, tree: Path
) -> None:
    info = tree / INSECURE / "@v" / "v1.0.0.info"
    info.write_text(json.dumps({"Version": "v1.0.0", "version": "v1.0.1"}))
    response = client.get(f"/{INSECURE}/@latest")
    assert response.status_code == 403
