"""Hardening of the audit store, against the real server (points 2, 8 and 14).

2: no caller can make the store refuse other users' records (NUL bytes, C1 controls,
   bytes that are not UTF-8 in a path), and such paths are refused at the route stage.
8: a stalled database (a table lock held by someone else) never holds a request.
14: files that hold secrets are private from the moment they exist.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import stat
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import httpx
import pytest

from gateway.certs import DevPki, init_dev_pki
from tests.conftest import REPO, Tokens, modgate_cli
from tests.hardening.conftest import ServeOwn
from tests.support.audit import audit_rows, completed_row
from tests.support.gateway import GatewayProcess
from tests.support.locks import table_locks
from tests.support.opa import OpaServer
from tests.support.postgres import ThrowawayPostgres
from tests.support.upstream import UpstreamServer

pytestmark = [pytest.mark.postgres, pytest.mark.opa]

HELLO_LIST = "/example.com/hello/@v/list"
HELLO_INFO = "/example.com/hello/@v/v1.0.0.info"
BLACKLISTED_ZIP = "/example.com/insecure/@v/v1.0.1.zip"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def rows_by_id(postgres: ThrowawayPostgres, ids: list[str]) -> dict[str, dict[str, object]]:
    rows = audit_rows(postgres.libpq_dsn(), "request_id = ANY($1::text[])", ids)
    return {str(row["request_id"]): row for row in rows}


def wait_for_completions(
    postgres: ThrowawayPostgres, ids: list[str], timeout_s: float = 10
) -> dict[str, dict[str, object]]:
    deadline = time.monotonic() + timeout_s
    while True:
        rows = rows_by_id(postgres, ids)
        done = all(row["completed_at"] is not None for row in rows.values())
        if (len(rows) == len(ids) and done) or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


# --- point 2 ------------------------------------------------------------------------------

UNSAFE_PATHS = {
    "nul": ("/x%00/@v/list", "/x\\x00/@v/list"),
    "c0-in-module": ("/example.com/hello%01/@v/list", "/example.com/hello\\x01/@v/list"),
    "del": ("/example.com/hello/@v/v1.0.0%7f.info", "/example.com/hello/@v/v1.0.0\\x7f.info"),
    "c1-nel": ("/x%c2%85/@v/list", "/x\\u0085/@v/list"),
    "not-utf8": ("/x%ff/@v/list", "/x\\xff/@v/list"),
    "truncated-utf8": ("/x%c3%28/@v/list", "/x\\xc3(/@v/list"),
    "newline": ("/example.com/hel%0alo/@v/list", "/example.com/hel\\x0alo/@v/list"),
}


@pytest.mark.parametrize(("path", "stored"), UNSAFE_PATHS.values(), ids=list(UNSAFE_PATHS))
def test_a_path_with_control_or_non_utf8_bytes_is_a_recorded_400(
    client: httpx.Client, postgres: ThrowawayPostgres, path: str, stored: str
) -> None:
    # given an anonymous caller, when it sends a path the protocol cannot hold
    response = client.get(path)
    # then it is refused at the route stage, with a reason and a record that shows the
    # bytes escaped (printable, valid UTF-8, accepted by PostgreSQL)
    assert response.status_code == 400
    assert "request path" in response.text or "malformed" in response.text
    row = rows_by_id(postgres, [response.headers["X-Request-Id"]])[response.headers["X-Request-Id"]]
    assert row["decision"] == "deny" and row["error_code"] == "malformed_path"
    assert row["path"] == stored


def test_anonymous_nul_flood_does_not_fail_other_users_requests(
    gateway: GatewayProcess,
    tls_context: ssl.SSLContext,
    tokens: Tokens,
    postgres: ThrowawayPostgres,
) -> None:
    # given a legitimate user and two anonymous clients sending NUL bytes at the same time
    local = threading.local()
    opened: list[httpx.Client] = []

    def client() -> httpx.Client:
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=gateway.url, verify=tls_context, timeout=30)
            opened.append(local.client)
        return local.client

    def legit(_: int) -> httpx.Response:
        return client().get(HELLO_LIST, headers=bearer(tokens.alice))

    def attack(i: int) -> httpx.Response:
        return client().get(f"/x{i}%00/@v/list" if i % 2 else "/x%ff%00/@v/list")

    # when they run concurrently (their records share group commits)
    with ThreadPoolExecutor(max_workers=12) as pool:
        legit_futures = [pool.submit(legit, i) for i in range(150)]
        attack_futures = [pool.submit(attack, i) for i in range(150)]
        legit_answers = [f.result() for f in legit_futures]
        attack_answers = [f.result() for f in attack_futures]
    for each in opened:
        each.close()
    # then every legitimate request is served and completed, every attack refused with 400
    assert [r.status_code for r in legit_answers] == [200] * 150
    assert [r.status_code for r in attack_answers] == [400] * 150
    legit_ids = [r.headers["X-Request-Id"] for r in legit_answers]
    attack_ids = [r.headers["X-Request-Id"] for r in attack_answers]
    legit_rows = wait_for_completions(postgres, legit_ids)
    assert {row["status"] for row in legit_rows.values()} == {200}
    assert len(legit_rows) == 150
    # and every attack has its own record too, NUL shown escaped
    attack_rows = rows_by_id(postgres, attack_ids)
    assert len(attack_rows) == 150
    assert all("\\x00" in str(row["path"]) for row in attack_rows.values())


# --- point 8 ------------------------------------------------------------------------------


@pytest.fixture
def stall_gateway(serve_own: ServeOwn) -> Iterator[GatewayProcess]:
    with serve_own(MODGATE_AUDIT_TIMEOUT_S="1") as process:
        yield process


def timed_get(
    client: httpx.Client, path: str, headers: dict[str, str]
) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = client.get(path, headers=headers)
    return response, time.monotonic() - started


def test_a_locked_audit_table_refuses_requests_in_bounded_time(
    stall_gateway: GatewayProcess,
    tls_context: ssl.SSLContext,
    tokens: Tokens,
    postgres: ThrowawayPostgres,
) -> None:
    alice = bearer(tokens.alice)
    with httpx.Client(base_url=stall_gateway.url, verify=tls_context, timeout=20) as client:
        assert client.get(HELLO_INFO, headers=alice).status_code == 200
        # given someone holds an exclusive lock on the audit table for longer than the
        # gateway's audit.timeout_s (1 s here)
        with table_locks(postgres.libpq_dsn(), "audit_events"):
            answers = [
                timed_get(client, HELLO_INFO, alice),  # would be allowed
                timed_get(client, HELLO_INFO, {}),  # anonymous: 401
                timed_get(client, "/not-a-module/@v/list", alice),  # malformed: 400
                timed_get(client, BLACKLISTED_ZIP, alice),  # denied: 403
            ]
        # then the allowed request is refused with 503 and a reason, the refusals are
        # still answered, and none waits for the lock (twice the timeout at worst, plus margin)
        statuses = [response.status_code for response, _ in answers]
        assert statuses == [503, 401, 400, 403]
        assert "audit store" in answers[0][0].text
        assert max(elapsed for _, elapsed in answers) < 6
        # and once the lock is gone, requests are recorded and served again
        assert client.get(HELLO_INFO, headers=alice).status_code == 200


def test_a_locked_token_table_refuses_with_503_in_bounded_time(
    stall_gateway: GatewayProcess,
    tls_context: ssl.SSLContext,
    tokens: Tokens,
    postgres: ThrowawayPostgres,
) -> None:
    with httpx.Client(base_url=stall_gateway.url, verify=tls_context, timeout=20) as client:
        with table_locks(postgres.libpq_dsn(), "api_tokens"):
            response, elapsed = timed_get(client, HELLO_INFO, bearer(tokens.alice))
        assert response.status_code == 503
        assert "token store did not answer" in response.text
        assert elapsed < 6
        row = rows_by_id(postgres, [response.headers["X-Request-Id"]])
        assert row[response.headers["X-Request-Id"]]["error_code"] == "identity_unavailable"


# --- point 14 -----------------------------------------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_sqlite_audit_database_is_private_from_the_start(
    tmp_path: Path,
    pki: DevPki,
    tls_context: ssl.SSLContext,
    opa_server: OpaServer,
    public_upstream: UpstreamServer,
) -> None:
    # given the embedded default store (SQLite) in a fresh directory and the usual umask
    database = tmp_path / "audit.db"
    url = f"sqlite+aiosqlite:///{database}"
    old_umask = os.umask(0o022)
    try:
        # when the CLI creates it (a token) and the gateway writes to it
        token = modgate_cli(
            "token", "create", "--subject", "sue", "--group", "developers", database_url=url
        ).strip()
        env = {
            "MODGATE_AUDIT_DATABASE_URL": url,
            "MODGATE_POLICY_OPA_URL": opa_server.url,
            "MODGATE_UPSTREAM_PUBLIC": public_upstream.url,
            "MODGATE_TLS_CERT_FILE": str(pki.server_cert),
            "MODGATE_TLS_KEY_FILE": str(pki.server_key),
        }
        with (
            GatewayProcess(env, pki.ca_cert, tmp_path / "modgate.log") as process,
            httpx.Client(base_url=process.url, verify=tls_context, timeout=20) as client,
        ):
            assert client.get(HELLO_INFO, headers=bearer(token)).status_code == 200
            files = [p for p in tmp_path.iterdir() if p.name.startswith("audit.db")]
            # then the database and its journal files are readable by their owner only
            assert {p.name for p in files} >= {"audit.db", "audit.db-wal", "audit.db-shm"}
            assert {p.name: mode(p) for p in files} == {p.name: 0o600 for p in files}
    finally:
        os.umask(old_umask)


def test_dev_pki_private_keys_are_never_written_readable_by_others(tmp_path: Path) -> None:
    # given a permissive umask, and a key file left world-readable by an older run
    (tmp_path / "server-key.pem").write_text("old key")
    (tmp_path / "server-key.pem").chmod(0o644)
    chmods: list[str] = []

    def watch(event: str, args: tuple[object, ...]) -> None:
        if event == "os.chmod" and str(args[0]).endswith("-key.pem"):
            chmods.append(str(args[0]))

    sys.addaudithook(watch)  # hooks cannot be removed; this one only records key chmods
    old_umask = os.umask(0)
    try:
        # when the development PKI is written
        pki = init_dev_pki(tmp_path)
    finally:
        os.umask(old_umask)
    # then every key is 0600 and was created so (never tightened after being written)
    for key in (pki.server_key, pki.client_key):
        assert mode(key) == 0o600
    assert chmods == []
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert REPO.is_dir()


# --- the append-only trail (issue 9) ------------------------------------------------------


def events_of(postgres: ThrowawayPostgres, request_id: str) -> list[dict[str, object]]:
    async def fetch() -> list[dict[str, object]]:
        conn = await asyncpg.connect(postgres.libpq_dsn())
        try:
            rows = await conn.fetch(
                "SELECT * FROM audit_events WHERE request_id = $1 ORDER BY seq", request_id
            )
        finally:
            await conn.close()
        return [dict(row) for row in rows]

    return asyncio.run(fetch())


def test_a_revision_query_leaves_two_decisions_each_with_the_input_opa_got(
    client: httpx.Client, tokens: Tokens, postgres: ThrowawayPostgres
) -> None:
    # given a revision query the upstream resolves (master is v1.1.0)
    response = client.get("/example.com/hello/@v/master.info", headers=bearer(tokens.alice))
    assert response.status_code == 200
    request_id = response.headers["X-Request-Id"]
    completed_row(postgres.libpq_dsn(), request_id)
    # then the trail holds the decision as asked, the resolution and the completion, in
    # the order one writer wrote them
    decision, resolution, completion = events_of(postgres, request_id)
    assert [decision["event"], resolution["event"], completion["event"]] == [
        "decision",
        "resolution",
        "completion",
    ]
    assert decision["writer_id"] == resolution["writer_id"] == completion["writer_id"]
    assert int(str(decision["seq"])) < int(str(resolution["seq"])) < int(str(completion["seq"]))
    # and each decision stores the input document OPA decided on, with its shape
    asked = json.loads(str(decision["policy_input"]))
    resolved = json.loads(str(resolution["policy_input"]))
    assert decision["input_shape"] == resolution["input_shape"] == asked["shape"] == 1
    assert asked["request"]["id"] == request_id and asked["identity"]["subject"] == "alice"
    assert (asked["request"]["version"], asked["request"]["resolved"]) == ("master", False)
    assert (resolved["request"]["version"], resolved["request"]["resolved"]) == ("v1.1.0", True)
    assert decision["policy_revision"] is not None
    # and the view shows the one row auditors know
    row = completed_row(postgres.libpq_dsn(), request_id)
    assert (row["version"], row["requested_version"], row["status"]) == ("v1.1.0", "master", 200)


def test_a_refusal_before_the_policy_is_asked_stores_no_input(
    client: httpx.Client, postgres: ThrowawayPostgres
) -> None:
    response = client.get("/not-a-module/@v/list")
    assert response.status_code == 400
    decision, completion = events_of(postgres, response.headers["X-Request-Id"])
    assert (decision["event"], completion["event"]) == ("decision", "completion")
    assert decision["policy_input"] is None and decision["input_shape"] is None
