"""Audit sinks: where a batch of audit rows goes, in one transaction.

The writer (``writer.py``) groups rows; a sink writes one group. Two mechanisms:

- ``AsyncpgSink`` for PostgreSQL, the production store: one dedicated asyncpg connection
  (the writer is a single task, so one suffices), prepared statements, ``executemany``.
  It skips SQLAlchemy's per-statement work, which dominated the gateway's CPU per request.
- ``SqlAlchemySink`` for everything else (SQLite, the embedded default).

Both raise on any failure, in one of two kinds the writer tells apart:

- ``RowRejectedError``: the store refused the data of some row (an invalid character, a
  duplicate request id). The writer then writes the batch's rows one by one, so that one
  bad row never fails other users' requests.
- anything else: the store is unavailable; every request of the batch is refused.
"""

from collections.abc import Sequence
from typing import Protocol

import asyncpg
from sqlalchemy import Update, bindparam, func, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from .database import CONNECT_TIMEOUT_S, postgres_session_settings
from .models import audit_records
from .records import Completion, DecisionRecord, Resolution
from .rows import (
    COMPLETION_FIELDS,
    DECISION_FIELDS,
    RESOLUTION_FIELDS,
    completion_row,
    decision_row,
    resolution_row,
)


class RowRejectedError(Exception):
    """The store refused the data of a row in the batch (not the store being down)."""


class AuditSink(Protocol):
    """``write`` makes every row of one batch durable in one transaction, or raises
    (``RowRejectedError`` when the store refused a row's data)."""

    async def write(
        self,
        decisions: Sequence[DecisionRecord],
        resolutions: Sequence[Resolution],
        completions: Sequence[Completion],
    ) -> None: ...

    async def close(self) -> None: ...


def _update_statement(fields: tuple[str, ...], keep_if_null: frozenset[str]) -> Update:
    """UPDATE audit_records by request id; ``keep_if_null`` columns keep their value on NULL."""
    return (
        update(audit_records)
        .where(audit_records.c.request_id == bindparam("b_request_id"))
        .values(
            {
                audit_records.c[name]: func.coalesce(bindparam(f"b_{name}"), audit_records.c[name])
                if name in keep_if_null
                else bindparam(f"b_{name}")
                for name in fields
                if name != "request_id"
            }
        )
    )


_KEEP_IF_NULL = frozenset({"upstream", "error_code", "reasons"})
_complete_stmt = _update_statement(COMPLETION_FIELDS, _KEEP_IF_NULL)
_resolve_stmt = _update_statement(RESOLUTION_FIELDS, _KEEP_IF_NULL)


def _params(fields: tuple[str, ...], row: tuple[object, ...]) -> dict[str, object]:
    return {f"b_{k}": v for k, v in zip(fields, row, strict=True)}


class SqlAlchemySink:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def write(
        self,
        decisions: Sequence[DecisionRecord],
        resolutions: Sequence[Resolution],
        completions: Sequence[Completion],
    ) -> None:
        try:
            async with self._engine.begin() as conn:
                if decisions:
                    rows = [
                        dict(zip(DECISION_FIELDS, decision_row(d), strict=True)) for d in decisions
                    ]
                    await conn.execute(audit_records.insert(), rows)
                if resolutions:
                    params = [_params(RESOLUTION_FIELDS, resolution_row(r)) for r in resolutions]
                    await conn.execute(_resolve_stmt, params)
                if completions:
                    params = [_params(COMPLETION_FIELDS, completion_row(c)) for c in completions]
                    await conn.execute(_complete_stmt, params)
        except (DataError, IntegrityError, UnicodeError) as exc:
            raise RowRejectedError(str(exc.__cause__ or exc)) from exc

    async def close(self) -> None:
        """The engine belongs to the application; nothing to close here."""


def _positional(fields: tuple[str, ...]) -> dict[str, str]:
    return {name: f"${i}" for i, name in enumerate(fields, start=1)}


def _update_sql(fields: tuple[str, ...]) -> str:
    at = _positional(fields)
    sets = ", ".join(
        f"{name} = COALESCE({at[name]}, {name})"
        if name in _KEEP_IF_NULL
        else f"{name} = {at[name]}"
        for name in fields
        if name != "request_id"
    )
    return f"UPDATE audit_records SET {sets} WHERE request_id = {at['request_id']}"


_INSERT_SQL = (
    f"INSERT INTO audit_records ({', '.join(DECISION_FIELDS)}) "
    f"VALUES ({', '.join(_positional(DECISION_FIELDS).values())})"
)
_RESOLVE_SQL = _update_sql(RESOLUTION_FIELDS)
_COMPLETE_SQL = _update_sql(COMPLETION_FIELDS)
# Data the store refuses, as opposed to a store that is down: SQLSTATE classes 22 (data
# exception: bad characters, values too long) and 23 (integrity: a duplicate request id).
_ROW_ERRORS = (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError, UnicodeError)


class AsyncpgSink:
    """PostgreSQL through one asyncpg connection, reconnected after any failure.

    The session's ``statement_timeout`` and ``lock_timeout`` are ``timeout_s``: a locked
    table or a stalled server fails the batch in bounded time, server-side too."""

    def __init__(self, database_url: str, timeout_s: float) -> None:
        url = make_url(database_url).set(drivername="postgresql")
        self._dsn = url.render_as_string(hide_password=False)
        self._timeout_s = timeout_s
        self._conn: asyncpg.Connection | None = None

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(
                self._dsn,
                timeout=min(CONNECT_TIMEOUT_S, self._timeout_s),
                command_timeout=self._timeout_s,
                server_settings=postgres_session_settings(self._timeout_s),
            )
        return self._conn

    async def write(
        self,
        decisions: Sequence[DecisionRecord],
        resolutions: Sequence[Resolution],
        completions: Sequence[Completion],
    ) -> None:
        try:
            conn = await self._connection()
            async with conn.transaction():
                if decisions:
                    await conn.executemany(_INSERT_SQL, [decision_row(d) for d in decisions])
                if resolutions:
                    await conn.executemany(_RESOLVE_SQL, [resolution_row(r) for r in resolutions])
                if completions:
                    await conn.executemany(_COMPLETE_SQL, [completion_row(c) for c in completions])
        except _ROW_ERRORS as exc:
            # The transaction is rolled back and the connection stays usable.
            raise RowRejectedError(f"{type(exc).__name__}: {exc}") from exc
        except BaseException:
            await self.close()  # a broken (or cancelled) connection is never reused
            raise

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            conn.terminate()


def open_sink(database_url: str, engine: AsyncEngine, timeout_s: float) -> AuditSink:
    """The sink for ``database_url``: asyncpg for PostgreSQL, SQLAlchemy otherwise."""
    if make_url(database_url).get_backend_name() == "postgresql":
        return AsyncpgSink(database_url, timeout_s)
    return SqlAlchemySink(engine)
