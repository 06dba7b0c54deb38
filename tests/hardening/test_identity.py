"""Credentials are never echoed, never ambiguous, and failures are cheap (hardening 7, 11, 12).

Each attack is sent to the real `modgate serve` over TLS, with a real PostgreSQL, OPA and
upstreams on 127.0.0.1. The rate-limit tests start their own gateway on their own database
in the session's PostgreSQL, so that its counters (``pg_stat_user_tables`` of
``api_tokens``) count that gateway's token lookups and nothing else, and so that the
clients of the session's gateway are never limited.
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import secrets
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from starlette.testclient import TestClient

from gateway.app import build_app
from gateway.audit import migrate
from gateway.audit.database import open_engine
from gateway.audit.tokens import SqlTokenStore
from gateway.certs import DevPki
from gateway.identity.tokens import new_token
from gateway.observability import Metrics
from gateway.settings import (
    AuditSettings,
    IdentitySettings,
    PolicySettings,
    Settings,
    TlsSettings,
    UpstreamSettings,
)
from tests.conftest import Tokens, gateway_env, modgate_cli
from tests.support.audit import audit_rows
from tests.support.gateway import GatewayProcess
from tests.support.opa import OpaServer
from tests.support.postgres import ThrowawayPostgres
from tests.support.upstream import UpstreamServer

pytestmark = [pytest.mark.postgres, pytest.mark.opa]

LIST = "/example.com/hello/@v/list"
MALFORMED = "mgt_5ec2e7_not_a_real_token_but_shaped_like_one"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def basic(login: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()}


def unknown_token() -> str:
    """A well-formed token whose id no store has: 64 random bits, as real ids are."""
    return f"mgt_{secrets.token_hex(8)}_{secrets.token_hex(32)}"


def record_of(
    postgres: ThrowawayPostgres, request_id: str, database: str = "modgate"
) -> dict[str, Any]:
    rows = audit_rows(postgres.libpq_dsn(database), "request_id = $1", request_id)
    assert len(rows) == 1
    return rows[0]


def shown_anywhere(response: httpx.Response) -> str:
    return response.text + "\n" + "\n".join(f"{k}: {v}" for k, v in response.headers.items())


def secret_parts(token: str) -> list[str]:
    """The token and what follows its ``mgt_`` prefix: neither may be shown or stored."""
    return [token, token.removeprefix("mgt_")]


# -- 7. a credential is never echoed -------------------------------------------------------


@pytest.fixture(params=["valid", "malformed"])
def pasted(request: pytest.FixtureRequest, tokens: Tokens) -> str:
    """The token pasted in the wrong place: alice's real one, or one merely shaped like it."""
    return tokens.alice if request.param == "valid" else MALFORMED


@pytest.mark.parametrize("placement", ["basic-user-name", "bearer-scheme"])
def test_token_sent_in_the_wrong_header_field_is_never_echoed_or_stored(
    client: httpx.Client,
    postgres: ThrowawayPostgres,
    tokens: Tokens,
    pasted: str,
    placement: str,
) -> None:
    # given a token pasted as the Basic user name (.netrc `login <token> password <token>`),
    # or sent without its scheme (`Authorization: mgt_...`)
    if placement == "basic-user-name":
        headers = basic(pasted, tokens.alice)
    else:
        headers = {"Authorization": pasted}
    # when it reaches the gateway
    response = client.get(LIST, headers=headers)
    # then it is refused, and neither the answer nor the audit record repeats it
    assert response.status_code == 401
    row = record_of(postgres, response.headers["X-Request-Id"])
    assert row["error_code"] == "bad_credentials"
    stored = "\n".join(row["reasons"]) + "\n" + row["path"]
    for part in secret_parts(pasted):
        assert part not in shown_anywhere(response)
        assert part not in stored


def test_token_inside_the_path_is_never_echoed(
    client: httpx.Client, tokens: Tokens, pasted: str
) -> None:
    # given a token pasted into GOPROXY's path
    response = client.get(f"/{pasted}/@v/list", headers=bearer(tokens.bob))
    # then the 400 that names the malformed path shows it redacted
    assert response.status_code == 400
    assert "mgt_<redacted>" in response.text
    for part in secret_parts(pasted):
        assert part not in shown_anywhere(response)


def test_token_inside_the_path_is_never_stored_in_the_audit_record(
    client: httpx.Client, postgres: ThrowawayPostgres, tokens: Tokens, pasted: str
) -> None:
    response = client.get(f"/{pasted}/@v/list", headers=bearer(tokens.bob))
    row = record_of(postgres, response.headers["X-Request-Id"])
    stored = "\n".join(row["reasons"]) + "\n" + row["path"]
    for part in secret_parts(pasted):
        assert part not in stored


# -- 11. one credential per request ---------------------------------------------------------


@dataclass(frozen=True)
class RawAnswer:
    status: int
    body: str
    request_id: str


def raw_get(
    gateway: GatewayProcess, context: ssl.SSLContext, headers: list[tuple[str, str]]
) -> RawAnswer:
    """GET with the header lines exactly as given (http.client sends repeats as repeats)."""
    connection = http.client.HTTPSConnection("127.0.0.1", gateway.port, context=context, timeout=10)
    try:
        connection.putrequest("GET", LIST)
        for name, value in headers:
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        return RawAnswer(
            response.status, response.read().decode(), response.getheader("X-Request-Id", "")
        )
    finally:
        connection.close()


def test_two_authorization_headers_are_refused_with_400_and_audited(
    gateway: GatewayProcess,
    tls_context: ssl.SSLContext,
    tokens: Tokens,
    postgres: ThrowawayPostgres,
    public_upstream: UpstreamServer,
) -> None:
    # given alice's valid token first and a second credential after it
    asked_before = public_upstream.paths().count(LIST)
    headers = [
        ("Authorization", f"Bearer {tokens.alice}"),
        ("Authorization", f"Bearer {unknown_token()}"),
    ]
    # when both reach the gateway
    answer = raw_get(gateway, tls_context, headers)
    # then neither wins: the request is refused, recorded, and never forwarded
    assert answer.status == 400
    assert answer.body == "more than one Authorization header\n"
    row = record_of(postgres, answer.request_id)
    assert row["decision"] == "deny" and row["error_code"] == "duplicate_authorization"
    assert row["status"] == 400 and row["subject"] is None
    assert public_upstream.paths().count(LIST) == asked_before


@pytest.mark.parametrize("scheme", ["Bearer", "Basic"])
def test_two_credentials_folded_into_one_header_are_refused_with_400(
    client: httpx.Client, tokens: Tokens, postgres: ThrowawayPostgres, scheme: str
) -> None:
    # given two credentials joined by a comma, as a proxy folds repeated headers
    if scheme == "Bearer":
        value = f"Bearer {tokens.alice}, Bearer {tokens.bob}"
    else:
        alice, bob = basic("alice", tokens.alice), basic("bob", tokens.bob)
        value = f"{alice['Authorization']}, {bob['Authorization']}"
    # when they reach the gateway
    response = client.get(LIST, headers={"Authorization": value})
    # then they are refused like two headers
    assert response.status_code == 400
    assert response.text == "more than one credential in the Authorization header\n"
    row = record_of(postgres, response.headers["X-Request-Id"])
    assert row["error_code"] == "duplicate_authorization"


# -- 12. failures are cheap ------------------------------------------------------------------

LIMITS_DB = "identity_limits"


def _sql(postgres: ThrowawayPostgres, database: str, query: str) -> list[asyncpg.Record]:
    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(postgres.libpq_dsn(database))
        try:
            rows: list[asyncpg.Record] = await conn.fetch(query)
            return rows
        finally:
            await conn.close()

    return asyncio.run(run())


@dataclass(frozen=True)
class LimitsDatabase:
    name: str
    alice: str  # a valid token in this database (group developers)


@pytest.fixture(scope="module")
def limits_db(postgres: ThrowawayPostgres) -> LimitsDatabase:
    """A database of its own, so its counters see one gateway's lookups only."""
    if not _sql(postgres, "modgate", f"SELECT 1 FROM pg_database WHERE datname = '{LIMITS_DB}'"):
        _sql(postgres, "modgate", f"CREATE DATABASE {LIMITS_DB}")
    migrate.upgrade(postgres.dsn(LIMITS_DB))
    alice = modgate_cli(
        "token",
        "create",
        "--subject",
        "alice",
        "--group",
        "developers",
        database_url=postgres.dsn(LIMITS_DB),
    ).strip()
    return LimitsDatabase(LIMITS_DB, alice)


def token_store_reads(postgres: ThrowawayPostgres, database: str) -> int:
    """Scans of ``api_tokens`` (each token lookup is one), once no other session is open.

    A backend flushes its counters when it exits, but an idle one may hold them for up to
    10 s (PostgreSQL 15 pgstat_report_stat); so read after the gateway stopped, once its
    sessions are gone and the count holds still."""
    query = (
        "SELECT (SELECT count(*) FROM pg_stat_activity"
        "        WHERE datname = current_database() AND pid <> pg_backend_pid()) AS others,"
        "       (SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0)"
        "        FROM pg_stat_user_tables WHERE relname = 'api_tokens') AS reads"
    )
    deadline, last = time.monotonic() + 15, None
    while time.monotonic() < deadline:
        row = _sql(postgres, database, query)[0]
        if row["others"] == 0:
            if row["reads"] == last:
                return int(row["reads"])
            last = row["reads"]
        time.sleep(0.5)
    raise AssertionError(f"{database}: token lookups still changing after 15 s")


def transactions(postgres: ThrowawayPostgres, database: str) -> tuple[int, int]:
    """Committed and rolled-back transactions (a token lookup is a read, rolled back)."""
    query = f"SELECT xact_commit, xact_rollback FROM pg_stat_database WHERE datname = '{database}'"
    row = _sql(postgres, database, query)[0]
    return int(row["xact_commit"]), int(row["xact_rollback"])


@contextmanager
def own_gateway(
    tmp_path: Path,
    pki: DevPki,
    postgres: ThrowawayPostgres,
    opa_server: OpaServer,
    public_upstream: UpstreamServer,
    private_upstream: UpstreamServer,
    tls_context: ssl.SSLContext,
    **identity: str,
) -> Iterator[httpx.Client]:
    env = gateway_env(pki, postgres, opa_server.url, public_upstream.url, private_upstream.url)
    env["MODGATE_AUDIT_DATABASE_URL"] = postgres.dsn(LIMITS_DB)
    env.update({f"MODGATE_IDENTITY_{key.upper()}": value for key, value in identity.items()})
    process = GatewayProcess(env, pki.ca_cert, tmp_path / "modgate.log")
    with process, httpx.Client(base_url=process.url, verify=tls_context, timeout=30) as client:
        yield client


StartGateway = Callable[..., AbstractContextManager[httpx.Client]]


@pytest.fixture
def start_gateway(
    tmp_path: Path,
    pki: DevPki,
    postgres: ThrowawayPostgres,
    opa_server: OpaServer,
    public_upstream: UpstreamServer,
    private_upstream: UpstreamServer,
    tls_context: ssl.SSLContext,
    limits_db: LimitsDatabase,
) -> StartGateway:
    """Start a gateway of its own on the limits database with MODGATE_IDENTITY_* given."""

    def start(**identity: str) -> AbstractContextManager[httpx.Client]:
        return own_gateway(
            tmp_path,
            pki,
            postgres,
            opa_server,
            public_upstream,
            private_upstream,
            tls_context,
            **identity,
        )

    return start


def test_unknown_token_ids_repeated_as_the_go_command_does_cost_one_lookup_each(
    start_gateway: StartGateway, postgres: ThrowawayPostgres
) -> None:
    # given 10 unknown ids, each sent twice (the go command retries every https 4xx once),
    # and one unknown id sent 20 times, with the failure limit off
    ids = [unknown_token() for _ in range(10)]
    repeated = unknown_token()
    before = token_store_reads(postgres, LIMITS_DB)
    with start_gateway(failed_auth_per_minute="0", negative_cache_s="30") as client:
        statuses = [client.get(LIST, headers=bearer(t)).status_code for t in ids for _ in (1, 2)]
        statuses += [client.get(LIST, headers=bearer(repeated)).status_code for _ in range(20)]
    lookups = token_store_reads(postgres, LIMITS_DB) - before
    print(f"40 requests, 11 distinct unknown ids: {lookups} token-store lookups")
    # then each distinct id reached the store once
    assert statuses == [401] * 40
    assert lookups == 11


def test_random_unknown_ids_from_one_client_are_limited_and_spare_the_store(
    start_gateway: StartGateway, postgres: ThrowawayPostgres
) -> None:
    # given a client that sends 200 requests, each with a new random token id
    before = token_store_reads(postgres, LIMITS_DB)
    commits_before, rollbacks_before = transactions(postgres, LIMITS_DB)
    started = time.monotonic()
    with start_gateway(failed_auth_per_minute="30") as client:
        answers = [client.get(LIST, headers=bearer(unknown_token())) for _ in range(200)]
    elapsed = time.monotonic() - started
    lookups = token_store_reads(postgres, LIMITS_DB) - before
    commits, rollbacks = transactions(postgres, LIMITS_DB)
    commits, rollbacks = commits - commits_before, rollbacks - rollbacks_before
    statuses = [answer.status_code for answer in answers]
    print(
        f"200 random ids in {elapsed:.1f} s: {statuses.count(401)} x 401, "
        f"{statuses.count(429)} x 429, {lookups} token-store lookups, "
        f"{commits} commits and {rollbacks} rollbacks in its database"
    )
    # then the first 30 are bad credentials, the 31st is refused 429, and only the
    # requests answered 401 (a budget of 30 a minute, refilled meanwhile) cost a lookup
    assert statuses[:30] == [401] * 30
    assert statuses[30] == 429
    assert set(statuses) == {401, 429}
    assert lookups == statuses.count(401)
    assert statuses.count(401) <= 30 + elapsed / 2 + 1


def test_a_limited_client_gets_429_with_retry_after_even_for_a_valid_token(
    start_gateway: StartGateway, postgres: ThrowawayPostgres, limits_db: LimitsDatabase
) -> None:
    # given a client that has spent its budget of 3 bad credentials a minute
    with start_gateway(failed_auth_per_minute="3") as client:
        spent = [client.get(LIST, headers=bearer(unknown_token())).status_code for _ in range(3)]
        # when it presents credentials again, even valid ones
        limited = client.get(LIST, headers=bearer(limits_db.alice))
    # then it is refused 429 before its token is looked at, with when to come back
    assert spent == [401] * 3
    assert limited.status_code == 429
    retry_after = int(limited.headers["Retry-After"])
    assert 1 <= retry_after <= 21  # one unit refills in 20 s at 3 a minute
    assert limited.text == (
        f"too many failed authentications from 127.0.0.1; retry in {retry_after} s\n"
    )
    assert "WWW-Authenticate" not in limited.headers
    row = record_of(postgres, limited.headers["X-Request-Id"], LIMITS_DB)
    assert row["decision"] == "deny" and row["error_code"] == "too_many_failures"
    assert row["status"] == 429 and row["subject"] is None


def test_anonymous_requests_are_never_charged_or_limited(
    start_gateway: StartGateway, limits_db: LimitsDatabase
) -> None:
    # given a budget of 3 bad credentials a minute
    with start_gateway(failed_auth_per_minute="3") as client:
        # when a client sends 10 requests without credentials
        anonymous = [client.get(LIST) for _ in range(10)]
        # then the policy answers each (401, authentication required), and none is charged:
        # a valid token still works, and exactly 3 bad credentials pass before the limit
        valid = client.get(LIST, headers=bearer(limits_db.alice))
        bad = [client.get(LIST, headers=bearer(unknown_token())).status_code for _ in range(4)]
        still_anonymous = client.get(LIST)
    assert [r.status_code for r in anonymous] == [401] * 10
    assert all("authentication required" in r.text for r in anonymous)
    assert valid.status_code == 200
    assert bad == [401, 401, 401, 429]
    assert still_anonymous.status_code == 401
    assert "authentication required" in still_anonymous.text


def test_rate_limited_refusals_are_counted_in_the_metrics(
    postgres: ThrowawayPostgres, opa_server: OpaServer, public_upstream: UpstreamServer
) -> None:
    # given the real app with a budget of 2 bad credentials a minute
    settings = Settings(
        tls=TlsSettings(plain_http=True),
        identity=IdentitySettings(token_cache_s=0, failed_auth_per_minute=2),
        policy=PolicySettings(opa_url=opa_server.url, retries=0),
        audit=AuditSettings(database_url=postgres.dsn()),
        upstream=UpstreamSettings(public=(public_upstream.url,)),
    )
    metrics = Metrics()
    with TestClient(build_app(settings, metrics)) as client:
        # when one client sends 5 bad credentials
        statuses = [client.get(LIST, headers=bearer(unknown_token())).status_code for _ in range(5)]
    # then the 3 refused with 429 are counted
    assert statuses == [401, 401, 429, 429, 429]
    assert metrics.auth_rate_limited.value() == 3


# -- API tokens that expire (issue 10, point 7) ----------------------------------------------


def test_a_token_made_to_expire_works_until_then_and_is_listed_with_its_expiry(
    client: httpx.Client, postgres: ThrowawayPostgres
) -> None:
    token = modgate_cli(
        "token", "create", "--subject", "frank", "--group", "developers", "--expires", "30m",
        database_url=postgres.dsn(),
    ).strip()  # fmt: skip
    assert client.get(LIST, headers=bearer(token)).status_code == 200
    listed = modgate_cli("token", "list", database_url=postgres.dsn())
    (line,) = [row for row in listed.splitlines() if "\tfrank\t" in row]
    assert "\tactive\t" in line and "\texpires 20" in line


def test_an_expired_token_is_refused_saying_so_and_audited(
    client: httpx.Client, postgres: ThrowawayPostgres
) -> None:
    made = new_token("grace", ("developers",), datetime.now(UTC) - timedelta(seconds=1))

    async def add() -> None:
        engine = open_engine(postgres.dsn())
        try:
            await SqlTokenStore(engine).add(made.stored)
        finally:
            await engine.dispose()

    asyncio.run(add())
    response = client.get(LIST, headers=bearer(made.secret_token))
    assert response.status_code == 401
    assert "API token expired at" in response.text
    row = record_of(postgres, response.headers["X-Request-Id"])
    assert (row["status"], row["error_code"]) == (401, "bad_credentials")


@pytest.mark.parametrize("duration", ["0d", "90", "5s", "1w", "d", "1.5h"])
def test_a_bad_expiry_is_refused_and_makes_no_token(
    postgres: ThrowawayPostgres, duration: str
) -> None:
    before = modgate_cli("token", "list", database_url=postgres.dsn())
    with pytest.raises(subprocess.CalledProcessError) as caught:
        modgate_cli(
            "token", "create", "--subject", "henry", "--expires", duration,
            database_url=postgres.dsn(),
        )  # fmt: skip
    assert caught.value.returncode == 2
    assert "expected a positive duration such as 90d" in caught.value.stderr
    assert modgate_cli("token", "list", database_url=postgres.dsn()) == before


def test_a_revoked_token_is_refused_at_once_despite_the_cache(
    serve_own: Any, pki: DevPki, postgres: ThrowawayPostgres
) -> None:
    """`modgate token revoke` notifies every gateway on PostgreSQL (LISTEN/NOTIFY): a token
    verified a moment ago, cached for five minutes, is refused within moments, not then."""
    token = modgate_cli(
        "token", "create", "--subject", "dave", "--group", "developers",
        database_url=postgres.dsn(),
    ).strip()  # fmt: skip
    with serve_own(MODGATE_IDENTITY_TOKEN_CACHE_S="300") as gateway:
        context = ssl.create_default_context(cafile=str(pki.ca_cert))
        with httpx.Client(base_url=gateway.url, verify=context, timeout=10) as client:
            assert client.get(LIST, headers=bearer(token)).status_code == 200  # now cached
            modgate_cli("token", "revoke", token.split("_")[1], database_url=postgres.dsn())
            deadline = time.monotonic() + 3
            while (status := client.get(LIST, headers=bearer(token)).status_code) == 200:
                assert time.monotonic() < deadline, "the revoked token still works"
                time.sleep(0.05)
            assert status == 401
