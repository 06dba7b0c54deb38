"""Open the audit database: one async engine, tuned per dialect, errors made ours."""

import logging
import os
import stat
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5.0
"""A database that does not answer in this time fails the request (fail closed) quickly."""


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    # WAL lets readers (audit queries) run beside the writer; FULL sync keeps a committed
    # decision on disk before the request is served.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


def postgres_session_settings(timeout_s: float) -> dict[str, str]:
    """Server-side bounds for modgate's sessions: a statement or a lock wait past
    ``timeout_s`` is cancelled by PostgreSQL itself, so a table lock held by someone else
    can never hold the gateway's requests longer than that."""
    ms = str(max(1, round(timeout_s * 1000)))
    return {"statement_timeout": ms, "lock_timeout": ms}


def private_sqlite_file(url: str) -> None:
    """Create the SQLite file of ``url`` with mode 0600 before SQLite does (it would use
    0644): it holds token hashes and the audit trail. SQLite gives its -wal and -shm files
    the database file's mode. An existing file readable by others is made private."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            log.warning("audit database %s was mode %o; made it 0600", path, mode)
            path.chmod(0o600)
        return
    os.close(fd)


def open_engine(url: str, timeout_s: float | None = None) -> AsyncEngine:
    """Create the engine for ``url`` (``postgresql+asyncpg://`` or ``sqlite+aiosqlite://``).

    ``timeout_s`` bounds every statement and lock wait of the engine's sessions (the
    gateway's token lookups); None leaves them unbounded (migrations may take long)."""
    if url.startswith("sqlite"):
        private_sqlite_file(url)
        busy = {} if timeout_s is None else {"timeout": timeout_s}  # SQLite's busy timeout
        engine = create_async_engine(url, connect_args=busy)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    connect_timeout = CONNECT_TIMEOUT_S if timeout_s is None else min(CONNECT_TIMEOUT_S, timeout_s)
    connect_args: dict[str, object] = {"timeout": connect_timeout}
    if timeout_s is not None:
        connect_args["command_timeout"] = timeout_s
        connect_args["server_settings"] = postgres_session_settings(timeout_s)
    return create_async_engine(
        url,
        pool_size=10,
        max_overflow=10,
        pool_timeout=connect_timeout,
        connect_args=connect_args,
    )
