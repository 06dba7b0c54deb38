"""Audit sinks: where a batch of audit rows goes, in one transaction.

The writer (``writer.py``) groups rows; a sink writes one group. Two mechanisms:

- ``AsyncpgSink`` for PostgreSQL, the production store: one dedicated asyncpg connection
  (the writer is a single task, so one suffices), prepared statements, ``executemany``.
  It skips SQLAlchemy's per-statement work, which dominated the gateway's CPU per request.
- ``SqlAlchemySink`` for everything else (SQLite, the embedded default).

Both raise on any failure; the writer then refuses every request of the batch.
"""

from collections.abc import Sequence
from typing import Protocol

import asyncpg
from sqlalchemy import bindparam, func, update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from .database import CONNECT_TIMEOUT_S
from .models import audit_records
from .records import Completion, DecisionRecord
from .rows import COMPLETION_FIELDS, DECISION_FIELDS, completion_row, decision_row


class AuditSink(Protocol):
    """``write`` makes every row of one batch durable in one transaction, or raises."""

    async def write(
        self, decisions: Sequence[DecisionRecord], completions: Sequence[Completion]
    ) -> None: ...

    async def close(self) -> None: ...


_complete_stmt = (
    update(audit_records)
    .where(audit_records.c.request_id == bindparam("b_request_id"))
    .values(
        {
            audit_records.c[name]: func.coalesce(bindparam(f"b_{name}"), audit_records.c[name])
            if name in ("upstream", "error_code")
            else bindparam(f"b_{name}")
            for name in COMPLETION_FIELDS
            if name != "request_id"
        }
    )
)


class SqlAlchemySink:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def write(
        self, decisions: Sequence[DecisionRecord], completions: Sequence[Completion]
    ) -> None:
        async with self._engine.begin() as conn:
            if decisions:
                rows = [dict(zip(DECISION_FIELDS, decision_row(d), strict=True)) for d in decisions]
                await conn.execute(audit_records.insert(), rows)
            if completions:
                params = [
                    {f"b_{k}": v for k, v in zip(COMPLETION_FIELDS, completion_row(c), strict=True)}
                    for c in completions
                ]
                await conn.execute(_complete_stmt, params)

    async def close(self) -> None:
        """The engine belongs to the application; nothing to close here."""


_INSERT_SQL = (
    f"INSERT INTO audit_records ({', '.join(DECISION_FIELDS)}) "
    f"VALUES ({', '.join(f'${i}' for i in range(1, len(DECISION_FIELDS) + 1))})"
)
_UPDATE_SQL = (
    "UPDATE audit_records SET status = $2, bytes = $3, sha256 = $4, duration_ms = $5, "
    "completed_at = $6, upstream = COALESCE($7, upstream), "
    "error_code = COALESCE($8, error_code) WHERE request_id = $1"
)


class AsyncpgSink:
    """PostgreSQL through one asyncpg connection, reconnected after any failure."""

    def __init__(self, database_url: str) -> None:
        url = make_url(database_url).set(drivername="postgresql")
        self._dsn = url.render_as_string(hide_password=False)
        self._conn: asyncpg.Connection | None = None

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(self._dsn, timeout=CONNECT_TIMEOUT_S)
        return self._conn

    async def write(
        self, decisions: Sequence[DecisionRecord], completions: Sequence[Completion]
    ) -> None:
        try:
            conn = await self._connection()
            async with conn.transaction():
                if decisions:
                    await conn.executemany(_INSERT_SQL, [decision_row(d) for d in decisions])
                if completions:
                    await conn.executemany(_UPDATE_SQL, [completion_row(c) for c in completions])
        except BaseException:
            await self.close()  # a broken connection is never reused
            raise

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            conn.terminate()


def open_sink(database_url: str, engine: AsyncEngine) -> AuditSink:
    """The sink for ``database_url``: asyncpg for PostgreSQL, SQLAlchemy otherwise."""
    if make_url(database_url).get_backend_name() == "postgresql":
        return AsyncpgSink(database_url)
    return SqlAlchemySink(engine)
