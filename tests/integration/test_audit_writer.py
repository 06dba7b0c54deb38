"""One contract for the audit writer, run on both stores: PostgreSQL and SQLite."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

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
