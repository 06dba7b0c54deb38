"""Audit sinks: where a batch of audit events goes, in one transaction.

The writer (``writer.py``) groups and numbers events; a sink writes one group. Every
write is an INSERT into ``audit_events``: nothing here updates or deletes a row (the
trail is append-only, see ``models.py``). Two mechanisms:

- ``AsyncpgSink`` for PostgreSQL, the production store: one dedicated asyncpg connection
  (the writer is a single task, so one suffices) writing each group with one statement:
  a binary ``COPY`` (``copy_rows``), or for a group of one or two rows the prepared INSERT
  (``executemany_rows``), whichever ``bench/audit_bench.py`` measured faster for the
  group's size (``bench/README.md``). It skips SQLAlchemy's per-statement work, which
  dominated the gateway's CPU per request.
- ``SqlAlchemySink`` for everything else (SQLite, the embedded default).

Both raise on any failure, in one of two kinds the writer tells apart:

- ``RowRejectedError``: the store refused the data of some row (an invalid character, a
  duplicate request id, a broken CHECK). The transaction is rolled back for certain. The
  writer then writes the batch's rows one by one, so that one bad row never fails other
  users' requests. COPY has no ON CONFLICT and fails as a whole on one bad row, with the
  same SQLSTATE classes as an INSERT: that is all the writer needs.
- anything else: the store is unavailable; every request of the batch is refused.
"""

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import asyncpg
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from .database import CONNECT_TIMEOUT_S, postgres_session_settings
from .models import audit_events
from .records import AuditEvent
from .rows import EVENT_COLUMNS, event_row


class RowRejectedError(Exception):
    """The store refused the data of a row in the batch (not the store being down)."""


class AuditSink(Protocol):
    """``write`` makes every event of one batch durable in one transaction, or raises
    (``RowRejectedError`` when the store refused a row's data)."""

    async def write(self, events: Sequence[AuditEvent]) -> None: ...

    async def close(self) -> None: ...


class SqlAlchemySink:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def write(self, events: Sequence[AuditEvent]) -> None:
        if not events:
            return
        rows = [
            dict(zip(EVENT_COLUMNS, event_row(event, json_text=False), strict=True))
            for event in events
        ]
        try:
            async with self._engine.begin() as conn:
                await conn.execute(audit_events.insert(), rows)
        except (DataError, IntegrityError, UnicodeError) as exc:
            raise RowRejectedError(str(exc.__cause__ or exc)) from exc

    async def close(self) -> None:
        """The engine belongs to the application; nothing to close here."""


InsertRows = Callable[[asyncpg.Connection, list[tuple[object, ...]]], Awaitable[None]]
"""Puts rows (EVENT_COLUMNS order, JSON as text) into audit_events with one statement,
all or none, and commits them."""


async def copy_rows(conn: asyncpg.Connection, rows: list[tuple[object, ...]]) -> None:
    """One binary ``COPY audit_events FROM STDIN`` for the whole batch."""
    await conn.copy_records_to_table(audit_events.name, records=rows, columns=EVENT_COLUMNS)


_INSERT_SQL = (
    f"INSERT INTO {audit_events.name} ({', '.join(EVENT_COLUMNS)}) "
    f"VALUES ({', '.join(f'${i}' for i in range(1, len(EVENT_COLUMNS) + 1))})"
)


async def executemany_rows(conn: asyncpg.Connection, rows: list[tuple[object, ...]]) -> None:
    """The prepared INSERT, bound once per row and pipelined (``executemany``)."""
    await conn.executemany(_INSERT_SQL, rows)


COPY_FROM_ROWS = 3
"""Below this many rows executemany is the faster (COPY costs one more round trip, for
its CopyInResponse); from it, COPY (it sends the rows binary, in one message stream, and
the server parses no statement per row). Measured in bench/audit_bench.py."""


async def copy_or_executemany_rows(
    conn: asyncpg.Connection, rows: list[tuple[object, ...]]
) -> None:
    """The faster of the two for the batch's size: the sink's default."""
    if len(rows) < COPY_FROM_ROWS:
        await executemany_rows(conn, rows)
    else:
        await copy_rows(conn, rows)


# Data the store refuses, as opposed to a store that is down: SQLSTATE classes 22 (data
# exception: bad characters, values too long) and 23 (integrity: a duplicate request id,
# a CHECK), for COPY as for INSERT; UnicodeError when asyncpg cannot encode a text.
_ROW_ERRORS = (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError, UnicodeError)


class AsyncpgSink:
    """PostgreSQL through one asyncpg connection, reconnected after any failure.

    The session's ``statement_timeout`` and ``lock_timeout`` are ``timeout_s``: a locked
    table or a stalled server fails the batch in bounded time, server-side too."""

    def __init__(
        self, database_url: str, timeout_s: float, insert: InsertRows = copy_or_executemany_rows
    ) -> None:
        url = make_url(database_url).set(drivername="postgresql")
        self._dsn = url.render_as_string(hide_password=False)
        self._timeout_s = timeout_s
        self._insert = insert
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

    async def write(self, events: Sequence[AuditEvent]) -> None:
        if not events:
            return
        try:
            rows = [event_row(event, json_text=True) for event in events]
            conn = await self._connection()
            # One statement is one transaction: no BEGIN and COMMIT round trips (a COPY
            # outside a transaction commits as a whole; executemany pipelines its rows
            # up to one Sync, which PostgreSQL runs as one implicit transaction).
            await self._insert(conn, rows)
        except _ROW_ERRORS as exc:
            # The statement's transaction is rolled back; the connection stays usable.
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
