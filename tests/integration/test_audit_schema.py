"""The audit schema on both stores: the models match what Alembic builds, migration 0002
carries every 0001 row over (and back on downgrade), and every query in
docs/auditing.md runs unchanged against the audit_records view.

PostgreSQL missing fails the PostgreSQL cases under CI=true and skips them with the reason
elsewhere; the SQLite cases run either way (tests/integration/test_audit_writer.py).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import asyncpg
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.audit import migrate
from gateway.audit.database import open_engine
from gateway.audit.models import api_tokens, audit_events, audit_records_view, metadata
from gateway.audit.records import Completion, DecisionRecord
from gateway.audit.sink import open_sink
from gateway.audit.writer import AuditWriter
from tests.integration.test_audit_writer import postgres_or_reason
from tests.support.postgres import ThrowawayPostgres

REPO = Path(__file__).resolve().parents[2]
DIALECTS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


async def fresh_postgres_database(postgres: ThrowawayPostgres, name: str) -> str:
    conn = await asyncpg.connect(postgres.libpq_dsn())
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {name}")
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    return postgres.dsn(name)


@pytest.fixture(params=DIALECTS)
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty database of each dialect (a sync fixture: PostgreSQL starts
    outside the event loop)."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/audit.db"
    postgres = postgres_or_reason(request)
    name = f"schema_{uuid4().hex[:12]}"
    return asyncio.run(fresh_postgres_database(postgres, name))


@pytest.fixture
async def engine(empty_database: str) -> AsyncIterator[AsyncEngine]:
    engine = open_engine(empty_database)
    yield engine
    await engine.dispose()


# --- the models are the migrated schema ------------------------------------------------


async def test_the_models_describe_exactly_the_schema_alembic_builds(
    empty_database: str, engine: AsyncEngine
) -> None:
    await asyncio.to_thread(migrate.upgrade, empty_database)

    def differences(conn: sa.Connection) -> list[object]:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))

    async with engine.connect() as conn:
        assert await conn.run_sync(differences) == []
        # and the view has the columns the models give it, in their order
        result = await conn.execute(sa.select(audit_records_view).limit(0))
        assert list(result.keys()) == [column.name for column in audit_records_view.c]


# --- migration 0002 carries the 0001 rows over ------------------------------------------

records_0001 = sa.Table(
    "audit_records",
    sa.MetaData(),
    *(
        sa.Column(name, kind)
        for name, kind in {
            "request_id": sa.String(32),
            "received_at": sa.DateTime(timezone=True),
            "subject": sa.String(128),
            "groups": sa.Text,
            "auth_method": sa.String(16),
            "client_address": sa.String(64),
            "kind": sa.String(16),
            "path": sa.String(2048),
            "module": sa.String(1024),
            "version": sa.String(256),
            "requested_version": sa.String(256),
            "decision": sa.String(8),
            "reasons": sa.Text,
            "error_code": sa.String(64),
            "policy_revision": sa.String(128),
            "route": sa.String(8),
            "upstream": sa.String(512),
            "status": sa.Integer,
            "bytes": sa.BigInteger,
            "sha256": sa.String(64),
            "duration_ms": sa.Float,
            "completed_at": sa.DateTime(timezone=True),
        }.items()
    ),
)
tokens_0001 = sa.Table(
    "api_tokens",
    sa.MetaData(),
    sa.Column("token_id", sa.String(16)),
    sa.Column("subject", sa.String(128)),
    sa.Column("groups", sa.Text),
    sa.Column("salt", sa.String(32)),
    sa.Column("digest", sa.String(64)),
    sa.Column("created_at", sa.DateTime(timezone=True)),
    sa.Column("revoked", sa.Boolean),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
)


def old_row(n: int, **values: object) -> dict[str, object]:
    at = datetime(2026, 11, 30, 12, 0, tzinfo=UTC) + timedelta(minutes=n)
    row: dict[str, object] = {
        "request_id": f"{n:032x}",
        "received_at": at,
        "subject": "alice",
        "groups": '["developers"]',
        "auth_method": "token",
        "client_address": "10.0.0.7",
        "kind": "zip",
        "path": "/example.com/hello/@v/v1.0.0.zip",
        "module": "example.com/hello",
        "version": "v1.0.0",
        "requested_version": None,
        "decision": "allow",
        "reasons": "[]",
        "error_code": None,
        "policy_revision": "r1",
        "route": "public",
        "upstream": "http://upstream",
        "status": 200,
        "bytes": 35_000,
        "sha256": "ab" * 32,
        "duration_ms": 12.5,
        "completed_at": at + timedelta(seconds=1),
    }
    row.update(values)
    return row


OLD_ROWS = [
    old_row(1),  # served completely
    old_row(  # refused by the policy
        2, module="example.com/insecure", version="v1.0.1", decision="deny",
        reasons='["v1.0.1 is blacklisted"]', error_code="denied_by_policy", status=403,
        bytes=40, upstream=None,
    ),
    old_row(3, kind="info", version="v1.1.0", requested_version="master"),  # resolved query
    old_row(4, status=None, bytes=None, sha256=None, duration_ms=None, completed_at=None),
    old_row(  # a refusal whose completion was lost
        5, subject=None, groups="[]", auth_method="anonymous", decision="deny",
        reasons='["authentication required"]', error_code="authentication_required",
        status=401, bytes=None, sha256=None, duration_ms=None, completed_at=None,
    ),
]  # fmt: skip


def as_read(row: dict[str, object]) -> dict[str, object]:
    """A 0001 row with its JSON texts decoded, as the view returns it."""
    return {
        **row,
        "groups": json.loads(str(row["groups"])),
        "reasons": json.loads(str(row["reasons"])),
    }


async def read(engine: AsyncEngine, table: sa.Table) -> list[dict[str, object]]:
    async with engine.connect() as conn:
        result = await conn.execute(sa.select(table).order_by(*list(table.c)[:2]))
        return [dict(row._mapping) for row in result]


async def test_upgrade_carries_every_0001_row_over_and_downgrade_brings_them_back(
    empty_database: str, engine: AsyncEngine
) -> None:
    # given a database at 0001 holding requests of every shape, and a token
    await asyncio.to_thread(migrate.upgrade, empty_database, "0001")
    token = {
        "token_id": "0123456789abcdef", "subject": "alice", "groups": '["developers", "ops"]',
        "salt": "s" * 32, "digest": "d" * 64, "created_at": datetime(2026, 11, 1, tzinfo=UTC),
        "revoked": False, "revoked_at": None,
    }  # fmt: skip
    async with engine.begin() as conn:
        await conn.execute(records_0001.insert(), OLD_ROWS)
        await conn.execute(tokens_0001.insert(), [token])
    as_stored = await read(engine, records_0001)  # the store's own rendering of each value
    await engine.dispose()  # SQLite: no connection may hold the old schema across it

    # when it is migrated to 0002
    await asyncio.to_thread(migrate.upgrade, empty_database)

    # then the view shows every request exactly as the table did
    assert await read(engine, audit_records_view) == [as_read(row) for row in as_stored]
    # as a decision event each, and a completion event for each completed one
    events = await read(engine, audit_events)
    kinds = sorted((str(e["request_id"]), str(e["event"])) for e in events)
    assert kinds == sorted(
        [(str(r["request_id"]), "decision") for r in OLD_ROWS]
        + [(str(r["request_id"]), "completion") for r in OLD_ROWS if r["completed_at"]]
    )
    assert {e["writer_id"] for e in events} == {"migrated-0001"}
    assert sorted(int(str(e["seq"])) for e in events) == sorted(
        {int(str(e["seq"])) for e in events}
    )
    assert all(e["policy_input"] is None for e in events)
    (migrated_token,) = await read(engine, api_tokens)
    assert migrated_token["groups"] == ["developers", "ops"]  # now a JSON array
    await engine.dispose()

    # and a downgrade gives the 0001 table back, row for row
    await asyncio.to_thread(migrate.downgrade, empty_database, "0001")
    restored = await read(engine, records_0001)
    assert [as_read(row) for row in restored] == [as_read(row) for row in as_stored]
    (restored_token,) = await read(engine, tokens_0001)
    assert json.loads(str(restored_token["groups"])) == ["developers", "ops"]
    await engine.dispose()
    # and upgrading again works
    await asyncio.to_thread(migrate.upgrade, empty_database)
    assert len(await read(engine, audit_records_view)) == len(OLD_ROWS)


async def test_0003_adds_token_expiry_and_its_downgrade_drops_it(
    empty_database: str, engine: AsyncEngine
) -> None:
    await asyncio.to_thread(migrate.upgrade, empty_database, "0002")
    async with engine.begin() as conn:
        await conn.execute(
            sa.text(
                "INSERT INTO api_tokens (token_id, subject, groups, salt, digest, created_at, "
                "revoked) VALUES ('0123456789abcdef', 'alice', '[]', :salt, :digest, :at, false)"
            ),
            {"salt": "s" * 32, "digest": "d" * 64, "at": datetime(2026, 11, 1, tzinfo=UTC)},
        )
    await engine.dispose()
    await asyncio.to_thread(migrate.upgrade, empty_database)  # to 0003
    (token,) = await read(engine, api_tokens)
    assert token["expires_at"] is None  # an existing token keeps working: it never expires
    await engine.dispose()
    await asyncio.to_thread(migrate.downgrade, empty_database, "0002")
    async with engine.connect() as conn:
        columns = await conn.run_sync(
            lambda sync: {c["name"] for c in sa.inspect(sync).get_columns("api_tokens")}
        )
    assert "expires_at" not in columns and "token_id" in columns


# --- every documented query runs on the view --------------------------------------------


def documented_queries() -> list[str]:
    doc = (REPO / "docs" / "auditing.md").read_text()
    return re.findall(r"```sql\n(.*?)```", doc, flags=re.DOTALL)


SQLITE_FORM = {  # what docs/auditing.md tells SQLite users to write instead
    "received_at > now() - interval '1 day'": "received_at > datetime('now', '-1 day')",
}


DETAIL_PG = re.compile(r"e\.policy_input->'identity'->'details'->>'(\w+)'")
DETAIL_SQLITE = "json_extract(e.policy_input, '$.identity.details.NAME')"


def for_dialect(query: str, dialect: str) -> str:
    if dialect == "sqlite":
        doc = (REPO / "docs" / "auditing.md").read_text()
        for postgres_form, sqlite_form in SQLITE_FORM.items():
            assert f"`{sqlite_form}`" in doc  # the doc still says so
            query = query.replace(postgres_form, sqlite_form)
        assert f"`{DETAIL_SQLITE}`" in doc
        query = DETAIL_PG.sub(lambda m: DETAIL_SQLITE.replace("NAME", m.group(1)), query)
    return query


CI_INPUT = json.dumps(
    {
        "shape": 1,
        "identity": {
            "subject": "ci:github:acme/builder",
            "method": "jwt",
            "details": {
                "provider": "github",
                "repository": "acme/builder",
                "ref": "refs/heads/main",
                "sha": "2b1f8e5a",
                "run_id": "9123456789",
            },
        },
    }
)


def decided(request_id: str, **values: object) -> DecisionRecord:
    fields: dict[str, object] = {
        "request_id": request_id, "received_at": datetime.now(UTC), "subject": "alice",
        "groups": ("developers",), "auth_method": "token", "client_address": "10.0.0.7",
        "kind": "zip", "path": "/golang.org/x/text/@v/v0.14.0.zip", "module": "golang.org/x/text",
        "version": "v0.14.0", "requested_version": None, "decision": "allow", "reasons": (),
        "error_code": None, "policy_revision": "r7", "route": "public", "upstream": None,
        "policy_input": '{"shape":1}', "input_shape": 1,
    }  # fmt: skip
    fields.update(values)
    return DecisionRecord(**fields)  # type: ignore[arg-type]


def served(request_id: str, sha256: str) -> Completion:
    return Completion(request_id, 200, 100, sha256, 3.0, datetime.now(UTC), upstream="http://u")


async def test_every_query_in_the_auditing_doc_runs_unchanged_on_the_view(
    empty_database: str, engine: AsyncEngine
) -> None:
    # given a trail written by the real writer: two complete zips of one version with
    # different content, a refusal, and a request never completed
    await asyncio.to_thread(migrate.upgrade, empty_database)
    zip_a, zip_b, refused, open_ = (uuid4().hex for _ in range(4))
    sink = open_sink(empty_database, engine, 3.0)
    async with AuditWriter(sink) as writer:
        await writer.record(decided(zip_a))
        await writer.record(decided(zip_b, subject="bob"))
        await writer.record(
            decided(
                refused, module="example.com/insecure", version="v1.0.1", decision="deny",
                reasons=("v1.0.1 is blacklisted",), error_code="denied_by_policy", status=403,
            )
        )  # fmt: skip
        await writer.record(decided(open_, kind="info"))
        ci_pull = uuid4().hex
        await writer.record(
            decided(
                ci_pull, subject="ci:github:acme/builder", auth_method="jwt", policy_input=CI_INPUT
            )
        )
        writer.complete_later(served(ci_pull, "aa" * 32))
        writer.complete_later(served(zip_a, "aa" * 32))
        writer.complete_later(served(zip_b, "bb" * 32))
        writer.complete_later(Completion(refused, 403, 40, "cc" * 32, 1.0, datetime.now(UTC)))
    queries = documented_queries()
    assert len(queries) == 7

    # when each documented query is run as written
    answers = []
    async with engine.connect() as conn:
        for query in queries:
            result = await conn.execute(sa.text(for_dialect(query, engine.dialect.name)))
            answers.append([dict(row._mapping) for row in result])

    # then each finds what it says it finds
    insecure, receivers, refusals, revisions, changed, never_completed, pipelines = answers
    assert [(r["decision"], r["status"]) for r in insecure] == [("deny", 403)]
    assert [r["subject"] for r in receivers] == ["alice", "bob", "ci:github:acme/builder"]
    assert [(r["subject"], r["error_code"], r["requests"]) for r in refusals] == [
        ("alice", "denied_by_policy", 1)
    ]
    assert sorted((r["decision"], r["requests"]) for r in revisions) == [("allow", 4), ("deny", 1)]
    assert [(r["module"], r["version"], r["contents"]) for r in changed] == [
        ("golang.org/x/text", "v0.14.0", 2)
    ]
    assert [r["request_id"] for r in never_completed] == [open_]
    assert [
        (r["subject"], r["repository"], r["ref"], r["commit_sha"], r["run_id"]) for r in pipelines
    ] == [("ci:github:acme/builder", "acme/builder", "refs/heads/main", "2b1f8e5a", "9123456789")]
