"""One contract for the audit writer, run on both stores: PostgreSQL and SQLite."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import asyncpg
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.audit import migrate
from gateway.audit.database import open_engine
from gateway.audit.models import audit_records
from gateway.audit.records import Completion, DecisionRecord
from gateway.audit.sink import AsyncpgSink, AuditSink, SqlAlchemySink
from gateway.audit.writer import AuditWriter
from gateway.errors import AuditError
from gateway.observability import Metrics
from tests.support.postgres import ThrowawayPostgres


def decision(request_id: str) -> DecisionRecord:
    return DecisionRecord(
        request_id=request_id,
        received_at=datetime.now(UTC),
        subject="alice",
        groups=("developers",),
        auth_method="token",
        client_address="127.0.0.1",
        kind="zip",
        path="/example.com/hello/@v/v1.0.0.zip",
        module="example.com/hello",
        version="v1.0.0",
        requested_version=None,
        decision="allow",
        reasons=(),
        error_code=None,
        policy_revision="r1",
        route="public",
        upstream=None,
    )


@pytest.fixture(params=["postgresql-asyncpg", "postgresql-sqlalchemy", "sqlite-sqlalchemy"])
async def store(
    request: pytest.FixtureRequest, postgres: ThrowawayPostgres, tmp_path: Path
) -> AsyncIterator[tuple[AsyncEngine, AuditSink]]:
    """Every sink implementation, each over the schema Alembic builds."""
    if request.param.startswith("sqlite"):
        url = f"sqlite+aiosqlite:///{tmp_path}/a.db"
        await asyncio.to_thread(migrate.upgrade, url)
    else:
        url = postgres.dsn()
    engine = open_engine(url)
    sink = (
        AsyncpgSink(url, timeout_s=3.0)
        if request.param.endswith("asyncpg")
        else SqlAlchemySink(engine)
    )
    yield engine, sink
    await engine.dispose()


async def rows(engine: AsyncEngine, request_ids: list[str]) -> list[dict[str, object]]:
    async with engine.connect() as conn:
        result = await conn.execute(
            select(audit_records).where(audit_records.c.request_id.in_(request_ids))
        )
        return [dict(r._mapping) for r in result]


@pytest.mark.postgres
async def test_recorded_decision_is_committed_when_record_returns(
    store: tuple[AsyncEngine, AuditSink],
) -> None:
    engine, sink = store
    rid = uuid4().hex
    async with AuditWriter(sink) as writer:
        await writer.record(decision(rid))
        stored = await rows(engine, [rid])
    assert len(stored) == 1 and stored[0]["decision"] == "allow"
    assert stored[0]["completed_at"] is None


@pytest.mark.postgres
async def test_completion_fills_in_status_bytes_and_hash(
    store: tuple[AsyncEngine, AuditSink],
) -> None:
    engine, sink = store
    rid = uuid4().hex
    digest = hashlib.sha256(b"zip bytes").hexdigest()
    async with AuditWriter(sink) as writer:
        await writer.record(decision(rid))
        writer.complete_later(
            Completion(rid, 200, 9, digest, 1.5, datetime.now(UTC), upstream="http://u")
        )
    (stored,) = await rows(engine, [rid])
    assert (stored["status"], stored["bytes"], stored["sha256"]) == (200, 9, digest)
    assert stored["upstream"] == "http://u" and stored["completed_at"] is not None


@pytest.mark.postgres
async def test_concurrent_records_share_transactions_and_all_become_durable(
    store: tuple[AsyncEngine, AuditSink],
) -> None:
    engine, sink = store
    ids = [uuid4().hex for _ in range(200)]
    async with AuditWriter(sink) as writer:
        await asyncio.gather(*(writer.record(decision(rid)) for rid in ids))
    async with engine.connect() as conn:
        count = await conn.scalar(
            select(func.count())
            .select_from(audit_records)
            .where(audit_records.c.request_id.in_(ids))
        )
    assert count == len(ids)


@pytest.mark.postgres
async def test_a_failed_write_is_an_audit_error_for_every_caller_in_it(
    store: tuple[AsyncEngine, AuditSink],
) -> None:
    _, sink = store
    rid = uuid4().hex
    async with AuditWriter(sink) as writer:
        await writer.record(decision(rid))
        with pytest.raises(AuditError):  # the same request id twice: the insert fails
            await writer.record(decision(rid))
        await writer.record(decision(uuid4().hex))  # and the writer carries on


@pytest.mark.postgres
async def test_a_row_the_store_refuses_fails_only_its_own_request(
    store: tuple[AsyncEngine, AuditSink],
) -> None:
    # given a request id already in the trail (a replayed row), queued with 50 good rows
    engine, sink = store
    metrics = Metrics()
    duplicate, good = uuid4().hex, [uuid4().hex for _ in range(50)]
    async with AuditWriter(sink, metrics=metrics) as writer:
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
    assert len(await rows(engine, good)) == 50
    assert metrics.audit_rows_isolated.value(result="refused") == 1


@pytest.mark.postgres
async def test_a_row_the_store_cannot_encode_is_written_ascii_escaped(
    postgres: ThrowawayPostgres,
) -> None:
    # given an audit database whose encoding cannot hold every character (LATIN1), and a
    # refused request whose path holds one it cannot (valid UTF-8, so not escaped)
    conn = await asyncpg.connect(postgres.libpq_dsn())
    try:
        await conn.execute("DROP DATABASE IF EXISTS audit_latin1")
        await conn.execute(
            "CREATE DATABASE audit_latin1 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' "
            "TEMPLATE template0"
        )
    finally:
        await conn.close()
    url = postgres.dsn("audit_latin1")
    await asyncio.to_thread(migrate.upgrade, url)
    engine = open_engine(url)
    metrics = Metrics()
    odd, plain = uuid4().hex, [uuid4().hex for _ in range(10)]
    odd_record = dataclasses.replace(decision(odd), path="/example.com/漢字/@v/list")
    try:
        async with AuditWriter(AsyncpgSink(url, timeout_s=3.0), metrics=metrics) as writer:
            # when it is committed among plain rows
            await asyncio.gather(
                writer.record(odd_record), *(writer.record(decision(rid)) for rid in plain)
            )
        # then every row is durable, the odd one with its text escaped, not lost
        stored = {row["request_id"]: row for row in await rows(engine, [odd, *plain])}
    finally:
        await engine.dispose()
    assert len(stored) == 11
    assert stored[odd]["path"] == "/example.com/\\u6f22\\u5b57/@v/list"
    assert metrics.audit_rows_isolated.value(result="rewritten") == 1
