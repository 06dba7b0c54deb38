"""Fail closed: when identity, policy, audit or upstream cannot be decided, the request is
refused with a reason, and nothing is forwarded. Runs the app in-process (Starlette's
TestClient runs the real lifespan) against real PostgreSQL, OPA and misbehaving upstreams.
"""

from __future__ import annotations

import base64
import json
import shutil
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from gateway.app import build_app
from gateway.audit import migrate
from gateway.settings import (
    AuditSettings,
    IdentitySettings,
    PolicySettings,
    Settings,
    TlsSettings,
    UpstreamSettings,
)
from tests.conftest import REPO, Modules, Tokens
from tests.support.audit import audit_rows
from tests.support.opa import OpaServer
from tests.support.ports import free_port
from tests.support.postgres import ThrowawayPostgres
from tests.support.upstream import UpstreamServer

pytestmark = [pytest.mark.postgres, pytest.mark.opa]

HELLO_ZIP = "/example.com/hello/@v/v1.0.0.zip"


def settings(
    database_url: str, opa_url: str, public: tuple[str, ...], private: tuple[str, ...] = ()
) -> Settings:
    return Settings(
        tls=TlsSettings(plain_http=True),
        identity=IdentitySettings(token_cache_s=0),
        policy=PolicySettings(opa_url=opa_url, retries=0, timeout_s=2),
        audit=AuditSettings(database_url=database_url),
        upstream=UpstreamSettings(
            public=public, private=private, connect_timeout_s=1, read_timeout_s=1
        ),
    )


@pytest.fixture
def auth(tokens: Tokens) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens.alice}"}


@pytest.fixture
def upstream(modules: Modules) -> Iterator[UpstreamServer]:
    """A private copy, so misbehaving here never disturbs the session's upstream."""
    with UpstreamServer(modules.public_root) as server:
        yield server


def only_record(postgres: ThrowawayPostgres, response: httpx.Response) -> dict[str, object]:
    rows = audit_rows(postgres.libpq_dsn(), "request_id = $1", response.headers["X-Request-Id"])
    assert len(rows) == 1
    return rows[0]


def test_policy_engine_down_refuses_with_503_and_forwards_nothing(
    postgres: ThrowawayPostgres, upstream: UpstreamServer, auth: dict[str, str]
) -> None:
    dead_opa = f"http://127.0.0.1:{free_port()}"
    app = build_app(settings(postgres.dsn(), dead_opa, (upstream.url,)))
    with TestClient(app) as client:
        response = client.get(HELLO_ZIP, headers=auth)
    assert response.status_code == 503
    assert response.text == "policy engine unreachable\n"
    assert upstream.paths() == []
    assert only_record(postgres, response)["error_code"] == "policy_unreachable"


class _GarbageOpa(BaseHTTPRequestHandler):
    reply = b"{}"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.reply)))
        self.end_headers()
        self.wfile.write(self.reply)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.mark.parametrize(
    ("reply", "reason", "code"),
    [
        (b"{}", "policy decision is undefined", "policy_undefined"),
        (
            b'{"result": {"allow": "yes", "reasons": [], "route": "public"}}',
            "boolean 'allow'",
            "policy_malformed",
        ),
        (
            b'{"result": {"allow": true, "reasons": [], "route": "elsewhere"}}',
            "bad 'route'",
            "policy_malformed",
        ),
        (b"not json", "malformed JSON", "policy_malformed"),
    ],
    ids=["undefined", "mistyped-allow", "bad-route", "not-json"],
)
def test_policy_engine_answering_garbage_is_a_refusal(
    postgres: ThrowawayPostgres,
    upstream: UpstreamServer,
    auth: dict[str, str],
    reply: bytes,
    reason: str,
    code: str,
) -> None:
    handler = type("Handler", (_GarbageOpa,), {"reply": reply})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        opa_url = f"http://127.0.0.1:{server.server_address[1]}"
        with TestClient(build_app(settings(postgres.dsn(), opa_url, (upstream.url,)))) as client:
            response = client.get(HELLO_ZIP, headers=auth)
    finally:
        server.shutdown()
        server.server_close()
    assert response.status_code == 503
    assert reason in response.text
    assert upstream.paths() == []
    assert only_record(postgres, response)["error_code"] == code


def test_audit_database_down_refuses_with_503_and_forwards_nothing(
    opa_server: OpaServer, upstream: UpstreamServer, tokens: Tokens
) -> None:
    with ThrowawayPostgres() as own:
        migrate.upgrade(own.dsn())
        from tests.conftest import modgate_cli

        token = modgate_cli(
            "token",
            "create",
            "--subject",
            "dora",
            "--group",
            "developers",
            database_url=own.dsn(),
        ).strip()
        app = build_app(settings(own.dsn(), opa_server.url, (upstream.url,)))
        with TestClient(app) as client:
            ok = client.get(HELLO_ZIP, headers={"Authorization": f"Bearer {token}"})
            assert ok.status_code == 200
            own.stop()
            forwarded = len(upstream.paths())
            response = client.get(HELLO_ZIP, headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 503
            assert "unavailable" in response.text
            assert len(upstream.paths()) == forwarded


def test_failed_upstream_moves_on_to_the_next_in_the_list(
    postgres: ThrowawayPostgres,
    opa_server: OpaServer,
    upstream: UpstreamServer,
    modules: Modules,
    auth: dict[str, str],
) -> None:
    broken = UpstreamServer(modules.public_root).start()
    broken.fail_with_status(502)
    dead = f"http://127.0.0.1:{free_port()}"
    try:
        public = (dead, broken.url, upstream.url)
        with TestClient(build_app(settings(postgres.dsn(), opa_server.url, public))) as client:
            response = client.get(HELLO_ZIP, headers=auth)
            assert response.content == modules["example.com/hello", "v1.0.0"].zip
    finally:
        broken.stop()
    assert broken.paths() == [HELLO_ZIP]


def test_all_upstreams_failing_is_a_502_with_the_reasons(
    postgres: ThrowawayPostgres,
    opa_server: OpaServer,
    upstream: UpstreamServer,
    auth: dict[str, str],
) -> None:
    upstream.fail_with_status(500)
    with TestClient(build_app(settings(postgres.dsn(), opa_server.url, (upstream.url,)))) as client:
        response = client.get(HELLO_ZIP, headers=auth)
    assert response.status_code == 502
    assert "HTTP 500" in response.text


def test_slow_upstream_is_a_504(
    postgres: ThrowawayPostgres,
    opa_server: OpaServer,
    upstream: UpstreamServer,
    auth: dict[str, str],
) -> None:
    upstream.delay_s = 2.5  # read timeout is 1 s
    with TestClient(build_app(settings(postgres.dsn(), opa_server.url, (upstream.url,)))) as client:
        response = client.get("/example.com/hello/@v/v1.0.0.info", headers=auth)
    assert response.status_code == 504


def test_upstream_404_and_410_pass_through_without_trying_the_next(
    postgres: ThrowawayPostgres,
    opa_server: OpaServer,
    upstream: UpstreamServer,
    modules: Modules,
    auth: dict[str, str],
) -> None:
    second = UpstreamServer(modules.public_root).start()
    upstream.fail_with_status(410)
    try:
        public = (upstream.url, second.url)
        with TestClient(build_app(settings(postgres.dsn(), opa_server.url, public))) as client:
            response = client.get(HELLO_ZIP, headers=auth)
    finally:
        second.stop()
    assert response.status_code == 410
    assert second.paths() == []


def test_zip_broken_off_mid_stream_is_recorded_as_failed(
    postgres: ThrowawayPostgres,
    opa_server: OpaServer,
    upstream: UpstreamServer,
    auth: dict[str, str],
) -> None:
    upstream.truncate_body_after = 100
    app = build_app(settings(postgres.dsn(), opa_server.url, (upstream.url,)))
    with TestClient(app) as client, pytest.raises(Exception):  # noqa: B017 (type varies)
        client.get(HELLO_ZIP, headers=auth)
    rows = audit_rows(
        postgres.libpq_dsn(), "path = $1 AND error_code = 'upstream_failed'", HELLO_ZIP
    )
    assert rows and rows[-1]["decision"] == "allow" and rows[-1]["bytes"] == 100


def test_private_module_with_no_private_upstream_is_never_sent_public(
    postgres: ThrowawayPostgres,
    opa_server: OpaServer,
    upstream: UpstreamServer,
    auth: dict[str, str],
) -> None:
    with TestClient(build_app(settings(postgres.dsn(), opa_server.url, (upstream.url,)))) as client:
        response = client.get("/corp.example.com/secret/@v/v1.0.0.info", headers=auth)
    assert response.status_code == 502
    assert "no private upstream" in response.text
    assert upstream.paths() == []


def test_malformed_basic_credentials_are_a_401(
    postgres: ThrowawayPostgres, opa_server: OpaServer, upstream: UpstreamServer
) -> None:
    garbage = {"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()}
    with TestClient(build_app(settings(postgres.dsn(), opa_server.url, (upstream.url,)))) as client:
        response = client.get(HELLO_ZIP, headers=garbage)
        assert response.status_code == 401
        assert client.get(HELLO_ZIP, headers={"Authorization": "Digest x"}).status_code == 401
    assert upstream.paths() == []


def test_policy_edit_rolls_out_without_restart_and_a_bad_edit_keeps_the_last_good_policy(
    tmp_path: Path,
    postgres: ThrowawayPostgres,
    upstream: UpstreamServer,
    auth: dict[str, str],
) -> None:
    policies = tmp_path / "policies"
    shutil.copytree(REPO / "policies", policies)
    data_file = policies / "modgate" / "config" / "data.json"
    with OpaServer(policies, log_path=tmp_path / "opa.log") as opa:
        app = build_app(settings(postgres.dsn(), opa.url, (upstream.url,)))
        with TestClient(app) as client:
            assert client.get(HELLO_ZIP, headers=auth).status_code == 200
            data = json.loads(data_file.read_text())
            data["blacklist"].append(
                {
                    "module": "example.com/hello",
                    "versions": ["v1.0.0"],
                    "reason": "pulled by compliance",
                    "ticket": "SEC-99",
                }
            )
            data_file.write_text(json.dumps(data))
            assert _eventually_status(client, auth, 403)
            (policies / "modgate" / "decision.rego").write_text(
                "package modgate\n\nthis is not rego"
            )
            time.sleep(0.5)
            still = client.get(HELLO_ZIP, headers=auth)
            assert still.status_code == 403 and "SEC-99" in still.text


def _eventually_status(client: TestClient, auth: dict[str, str], status: int) -> bool:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if client.get(HELLO_ZIP, headers=auth).status_code == status:
            return True
        time.sleep(0.1)
    return False


def test_readiness_reports_what_is_down_to_operators_only(
    postgres: ThrowawayPostgres, upstream: UpstreamServer, tokens: Tokens
) -> None:
    dead_opa = f"http://127.0.0.1:{free_port()}"
    dead_private = f"http://127.0.0.1:{free_port()}"
    app = build_app(settings(postgres.dsn(), dead_opa, (upstream.url,), (dead_private,)))
    with TestClient(app) as client:
        anonymous = client.get("/readyz")
        operator = client.get("/readyz", headers={"Authorization": f"Bearer {tokens.operator}"})
        developer = client.get("/readyz", headers={"Authorization": f"Bearer {tokens.alice}"})
    assert operator.status_code == 503
    assert operator.text == "policy engine not healthy\nno private upstream reachable\n"
    assert (anonymous.status_code, anonymous.text) == (503, "not ready\n")
    assert (developer.status_code, developer.text) == (503, "not ready\n")


class _BuggyIdentifier:
    """Stands for a bug in an identity stage: it raises what no stage should."""

    async def identify(self, proof: object) -> None:
        raise RuntimeError("bug")


def test_an_unexpected_error_in_a_stage_is_a_recorded_refusal(
    postgres: ThrowawayPostgres,
    opa_server: OpaServer,
    upstream: UpstreamServer,
    auth: dict[str, str],
) -> None:
    import dataclasses

    app = build_app(settings(postgres.dsn(), opa_server.url, (upstream.url,)))
    with TestClient(app, raise_server_exceptions=False) as client:
        gw = app.state.gateway
        buggy = dataclasses.replace(gw.identity, identifiers=(_BuggyIdentifier(),))
        app.state.gateway = dataclasses.replace(gw, identity=buggy)
        response = client.get(HELLO_ZIP, headers=auth)
    assert response.status_code == 500
    assert response.text.startswith("internal error in modgate (request id ")
    assert only_record(postgres, response)["decision"] == "deny"
    assert upstream.paths() == []
