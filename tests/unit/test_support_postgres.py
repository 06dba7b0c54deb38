"""Self-test for tests/support/postgres.py: start, connect, go down, come back, clean up."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from tests.support.postgres import ThrowawayPostgres

pytestmark = pytest.mark.postgres


async def select_one(dsn: str) -> int:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        value: int = await conn.fetchval("select 1")
        return value
    finally:
        await conn.close()


async def test_start_connect_stop_restart() -> None:
    with ThrowawayPostgres() as pg:
        assert pg.dsn() == f"postgresql+asyncpg://modgate@127.0.0.1:{pg.port}/modgate"
        assert await select_one(pg.libpq_dsn()) == 1
        base = pg.base
        assert base is not None and base.parent == Path("/tmp")

        pg.stop()  # "the database is down"
        with pytest.raises(OSError):
            await select_one(pg.libpq_dsn())

        pg.start()  # back again, same port, same data
        assert await select_one(pg.libpq_dsn()) == 1
    assert not base.exists()
