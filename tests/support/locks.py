"""Hold PostgreSQL table locks from another session, as a stalled or busy database would."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg


@contextmanager
def table_locks(libpq_dsn: str, *tables: str, mode: str = "ACCESS EXCLUSIVE") -> Iterator[None]:
    """Lock ``tables`` in ``mode`` in a transaction of its own until the block ends."""
    acquired, release = threading.Event(), threading.Event()  # release: set by the test thread
    failure: list[BaseException] = []

    async def hold() -> None:
        conn = await asyncpg.connect(libpq_dsn)
        try:
            async with conn.transaction():
                for table in tables:
                    await conn.execute(f"LOCK TABLE {table} IN {mode} MODE")
                acquired.set()
                await asyncio.to_thread(release.wait)
        finally:
            await conn.close()

    def run() -> None:
        try:
            asyncio.run(hold())
        except BaseException as exc:  # surfaced in the test thread below
            failure.append(exc)
            acquired.set()

    thread = threading.Thread(target=run, name="table-locks", daemon=True)
    thread.start()
    try:
        if not acquired.wait(10) or failure:
            raise RuntimeError(f"could not lock {tables}: {failure}")
        yield
    finally:
        release.set()
        thread.join(10)
