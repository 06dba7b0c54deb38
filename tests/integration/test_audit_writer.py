"""One contract for the audit writer, run on every sink: SQLite always, PostgreSQL (COPY,
executemany and SQLAlchemy) when its server binaries are installed.

PostgreSQL missing fails the PostgreSQL cases under CI=true and skips them with the reason
elsewhere; the SQLite cases run either way.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from uuid import uuid4

import asyncpg
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.audit import migrate
from gateway.audit.database import open_engine
from gateway.audit.models import audit_events, audit_records_view
from gateway.audit.records import Resolution
from gateway.audit.sink import (
    AsyncpgSink,
    AuditSink,
    SqlAlchemySink,
    copy_rows,
    executemany_rows,
)
from gateway.audit.writer import AuditWriter
from gateway.errors import AuditError
from gateway.observability import Metrics
from tests.support.postgres import ThrowawayPostgres, find_bindir
from tests.support.records import INPUT, ZIP_BYTES
from tests.support.records import completion_record as completion
from tests.support.records import decision_record as decision


@dataclass
class Store:
    engine: AsyncEngine
    sink: AuditSink
    dialect: str


def postgres_or_reason(request: pytest.FixtureRequest) -> ThrowawayPostgres:
    try:
        find_bindir()
    except RuntimeError as missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{missing} (CI=true: the PostgreSQL cases must run)")
        pytest.skip(f"PostgreSQL cases not run: {missing}")
    postgres: ThrowawayPostgres = request.getfixturevalue("postgres")
    return postgres


SINKS = [
    "sqlite-sqlalchemy",
    *(
        pytest.param(kind, marks=pytest.mark.postgres)
        for kind in ("postgresql-copy", "postgresql-executemany", "postgresql-sqlalchemy")
    ),
]


@pytest.fixture
def postgres_if_installed(request: pytest.FixtureRequest) -> ThrowawayPostgres:
    """The session's PostgreSQL (a sync fixture: it starts outside the event loop)."""
    return postgres_or_reason(request)


@pytest.fixture(params=SINKS)
def sink_url(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """(sink kind, database URL), over the schema Alembic builds."""
    kind: str = request.param
    if kind.startswith("sqlite"):
        url = f"sqlite+aiosqlite:///{tmp_path}/a.db"
        migrate.upgrade(url)
        return kind, url
    return kind, postgres_or_reason(request).dsn()


@pytest.fixture
async def store(sink_url: tuple[str, str]) -> AsyncIterator[Store]:
    """Every sink implementation."""
    kind, url = sink_url
    engine = open_engine(url)
    sink: AuditSink
    if kind == "postgresql-copy":
        sink = AsyncpgSink(url, timeout_s=3.0, insert=copy_rows)
    elif kind == "postgresql-executemany":
        sink = AsyncpgSink(url, timeout_s=3.0, insert=executemany_rows)
    else:
        sink = SqlAlchemySink(engine)
    yield Store(engine, sink, engine.dialect.name)
    await engine.dispose()


async def rows(engine: AsyncEngine, request_ids: list[str]) -> list[dict[str, object]]:
    """The ``audit_records`` view's rows of ``request_ids``, as auditors read them."""
    async with engine.connect() as conn:
        result = await conn.execute(
            select(audit_records_view).where(audit_records_view.c.request_id.in_(request_ids))
        )
        return [dict(r._mapping) for r in result]


async def events(engine: AsyncEngine, *where: object) -> list[dict[str, object]]:
    async with engine.connect() as conn:
        result = await conn.execute(
            select(audit_events).where(*where).order_by(audit_events.c.seq)  # type: ignore[arg-type]
        )
        return [dict(r._mapping) for r in result]


async def test_recorded_decision_is_committed_when_record_returns(store: Store) -> None:
    rid = uuid4().hex
    async with AuditWriter(store.sink) as writer:
        await writer.record(decision(rid))
        stored = await rows(store.engine, [rid])
    assert len(stored) == 1 and stored[0]["decision"] == "allow"
    assert stored[0]["completed_at"] is None and stored[0]["groups"] == ["developers"]


async def test_completion_fills_in_status_bytes_and_hash(store: Store) -> None:
    rid = uuid4().hex
    async with AuditWriter(store.sink) as writer:
        await writer.record(decision(rid))
        writer.complete_later(completion(rid))
    (stored,) = await rows(store.engine, [rid])
    digest = hashlib.sha256(ZIP_BYTES).hexdigest()
    assert (stored["status"], stored["bytes"], stored["sha256"]) == (200, 9, digest)
    assert stored["upstream"] == "http://u" and stored["completed_at"] is not None
    assert stored["reasons"] == [] and stored["error_code"] is None  # kept from the decision


async def test_a_resolution_and_a_failed_completion_win_over_the_first_decision(
    store: Store,
) -> None:
    # given a revision query allowed as asked, then resolved and refused, its answer a 403
    rid = uuid4().hex
    asked = decision(rid, kind="info", version="master", policy_revision="r1")
    resolved = Resolution(
        rid, "v1.1.0", "master", "deny", ("v1.1.0 is blacklisted",), "r2", "http://u",
        "denied_by_policy", 403, policy_input='{"shape":1,"request":{"resolved":true}}',
        input_shape=1,
    )  # fmt: skip
    async with AuditWriter(store.sink) as writer:
        await writer.record(asked)
        await writer.resolve(resolved)
        writer.complete_later(completion(rid, status=403, upstream=None))
    # then the view shows the resolution's version, decision and reasons over the first's
    (row,) = await rows(store.engine, [rid])
    assert (row["version"], row["requested_version"]) == ("v1.1.0", "master")
    assert (row["decision"], row["policy_revision"]) == ("deny", "r2")
    assert row["reasons"] == ["v1.1.0 is blacklisted"] and row["error_code"] == "denied_by_policy"
    assert (row["status"], row["upstream"]) == (403, "http://u")
    # and the trail holds both decisions, each with the input document it was made on
    first, second, done = await events(store.engine, audit_events.c.request_id == rid)
    assert [first["event"], second["event"], done["event"]] == [
        "decision",
        "resolution",
        "completion",
    ]
    assert (first["version"], first["policy_input"]) == ("master", INPUT)
    assert second["policy_input"] == {"shape": 1, "request": {"resolved": True}}


async def test_an_allowed_answer_that_failed_keeps_why_in_the_view(store: Store) -> None:
    rid = uuid4().hex
    async with AuditWriter(store.sink) as writer:
        await writer.record(decision(rid))
        failed = completion(rid, status=502, error_code="upstream_failed", reasons=("bad",))
        writer.complete_later(failed)
    (row,) = await rows(store.engine, [rid])
    assert (row["decision"], row["status"], row["error_code"]) == ("allow", 502, "upstream_failed")
    assert row["reasons"] == ["bad"]


async def test_each_decision_stores_the_policy_input_its_shape_and_revision(
    store: Store,
) -> None:
    rid, refused_early = uuid4().hex, uuid4().hex
    async with AuditWriter(store.sink) as writer:
        await writer.record(decision(rid))
        # a refusal before the policy was asked (a malformed path) has no input
        await writer.record(decision(refused_early, policy_input=None, input_shape=None))
    (stored,) = await events(store.engine, audit_events.c.request_id == rid)
    assert stored["policy_input"] == INPUT  # a JSON document, not a JSON string
    assert (stored["input_shape"], stored["policy_revision"]) == (1, "r1")
    (early,) = await events(store.engine, audit_events.c.request_id == refused_early)
    assert early["policy_input"] is None  # SQL NULL, not JSON null
    async with store.engine.connect() as conn:
        nulls = await conn.scalar(
            select(func.count())
            .select_from(audit_events)
            .where(
                audit_events.c.request_id == refused_early, audit_events.c.policy_input.is_(None)
            )
        )
    assert nulls == 1


async def test_concurrent_records_share_transactions_and_all_become_durable(store: Store) -> None:
    ids = [uuid4().hex for _ in range(200)]
    async with AuditWriter(store.sink) as writer:
        await asyncio.gather(*(writer.record(decision(rid)) for rid in ids))
    async with store.engine.connect() as conn:
        count = await conn.scalar(
            select(func.count())
            .select_from(audit_records_view)
            .where(audit_records_view.c.request_id.in_(ids))
        )
    assert count == len(ids)


async def test_a_failed_write_is_an_audit_error_for_every_caller_in_it(store: Store) -> None:
    rid = uuid4().hex
    async with AuditWriter(store.sink) as writer:
        await writer.record(decision(rid))
        with pytest.raises(AuditError):  # the same request id twice: the insert fails
            await writer.record(decision(rid))
        await writer.record(decision(uuid4().hex))  # and the writer carries on


async def test_a_row_the_store_refuses_fails_only_its_own_request(store: Store) -> None:
    # given a request id already in the trail (a replayed row), queued with 50 good rows
    metrics = Metrics()
    duplicate, good = uuid4().hex, [uuid4().hex for _ in range(50)]
    async with AuditWriter(store.sink, metrics=metrics) as writer:
        await writer.record(decision(duplicate))
        # when they share one group commit
        results = await asyncio.gather(
            *(writer.record(decision(rid)) for rid in good[:25]),
            writer.record(decision(duplicate)),
            *(writer.record(decision(rid)) for rid in good[25:]),
            return_exceptions=True,
        )
    # then only the refused row's own request fails; the other 50 are durable
    failures = [r for r in results if isinstance(r, BaseException)]
    assert len(failures) == 1 and isinstance(failures[0], AuditError)
    assert len(await rows(store.engine, good)) == 50
    assert metrics.audit_rows_isolated.value(result="refused") == 1


async def test_seq_counts_each_writers_events_in_write_order_without_gaps(store: Store) -> None:
    # given two writer runs, one of which has a batch with a row the store refuses
    duplicate = uuid4().hex
    async with AuditWriter(store.sink) as first:
        await first.record(decision(duplicate))
        ids = [uuid4().hex for _ in range(30)]
        await asyncio.gather(
            *(first.record(decision(rid)) for rid in ids),
            first.record(decision(duplicate)),
            return_exceptions=True,
        )
        for rid in ids[:5]:
            first.complete_later(completion(rid))
    async with AuditWriter(store.sink) as second:
        await second.record(decision(uuid4().hex))
    # then each run has its own id and numbers its committed events 1, 2, 3, ... in order
    assert first.writer_id != second.writer_id and len(first.writer_id) == 32
    written = await events(store.engine, audit_events.c.writer_id == first.writer_id)
    assert [e["seq"] for e in written] == list(range(1, 1 + 1 + 30 + 5))
    positions = {(e["request_id"], e["event"]): e["seq"] for e in written}
    assert all(positions[rid, "decision"] < positions[rid, "completion"] for rid in ids[:5])
    (other,) = await events(store.engine, audit_events.c.writer_id == second.writer_id)
    assert other["seq"] == 1
    assert all(e["prev_hash"] is None and e["record_hash"] is None for e in written)


APPEND_ONLY = {
    "postgresql": [
        "CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit_events is append-only: %', TG_OP; "
        "END $$",
        "CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE OR TRUNCATE "
        "ON audit_events FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()",
    ],
    "sqlite": [
        "CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events "
        "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: UPDATE'); END",
        "CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events "
        "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: DELETE'); END",
    ],
}
DROP_APPEND_ONLY = {
    "postgresql": ["DROP TRIGGER audit_events_append_only ON audit_events"],
    "sqlite": ["DROP TRIGGER audit_events_no_update", "DROP TRIGGER audit_events_no_delete"],
}


async def test_the_event_table_only_ever_receives_inserts(store: Store) -> None:
    # given an audit_events table that refuses any UPDATE or DELETE
    async with store.engine.begin() as conn:
        for statement in APPEND_ONLY[store.dialect]:
            await conn.execute(text(statement))
    try:
        rid = uuid4().hex
        async with AuditWriter(store.sink) as writer:
            # when a request is decided, resolved and completed
            await writer.record(decision(rid, version="master", kind="info"))
            (before,) = await events(store.engine, audit_events.c.request_id == rid)
            await writer.resolve(Resolution(rid, "v1.1.0", "master", "allow", (), "r1", None))
            writer.complete_later(completion(rid))
        # then every write succeeded, each as an event of its own
        (row,) = await rows(store.engine, [rid])
        assert (row["version"], row["status"]) == ("v1.1.0", 200)
        stored = await events(store.engine, audit_events.c.request_id == rid)
        assert [e["event"] for e in stored] == ["decision", "resolution", "completion"]
        # and the decision's own event is exactly as it was first written
        assert stored[0] == before
    finally:
        async with store.engine.begin() as conn:
            for statement in DROP_APPEND_ONLY[store.dialect]:
                await conn.execute(text(statement))


@pytest.mark.postgres
@pytest.mark.parametrize("insert", [copy_rows, executemany_rows], ids=["copy", "executemany"])
async def test_a_row_the_store_cannot_encode_is_written_ascii_escaped(
    postgres_if_installed: ThrowawayPostgres, insert: object
) -> None:
    # given an audit database whose encoding cannot hold every character (LATIN1), and a
    # refused request whose path holds one it cannot (valid UTF-8, so not escaped)
    postgres = postgres_if_installed
    database = f"audit_latin1_{getattr(insert, '__name__', 'x')}"
    conn = await asyncpg.connect(postgres.libpq_dsn())
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {database}")
        await conn.execute(
            f"CREATE DATABASE {database} ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' "
            "TEMPLATE template0"
        )
    finally:
        await conn.close()
    url = postgres.dsn(database)
    await asyncio.to_thread(migrate.upgrade, url)
    engine = open_engine(url)
    metrics = Metrics()
    odd, plain = uuid4().hex, [uuid4().hex for _ in range(10)]
    # (an input's texts come from validated module paths and operators' token subjects:
    # never from callers, and never beyond what the database's encoding can hold)
    odd_input = json.dumps({"shape": 1, "identity": {"subject": "zoë"}}, ensure_ascii=False)
    odd_record = decision(odd, path="/example.com/漢字/@v/list", policy_input=odd_input)
    sink = AsyncpgSink(url, timeout_s=3.0, insert=insert)  # type: ignore[arg-type]
    try:
        async with AuditWriter(sink, metrics=metrics) as writer:
            # when it is committed among plain rows
            await asyncio.gather(
                writer.record(odd_record), *(writer.record(decision(rid)) for rid in plain)
            )
        # then every row is durable, the odd one with its text escaped, not lost
        stored = {row["request_id"]: row for row in await rows(engine, [odd, *plain])}
        (odd_event,) = await events(engine, audit_events.c.request_id == odd)
    finally:
        await engine.dispose()
    assert len(stored) == 11
    assert stored[odd]["path"] == "/example.com/\\u6f22\\u5b57/@v/list"
    # and its policy input is the same document
    assert odd_event["policy_input"] == {"shape": 1, "identity": {"subject": "zoë"}}
    assert metrics.audit_rows_isolated.value(result="rewritten") == 1
