"""Token revocations heard over PostgreSQL's LISTEN/NOTIFY (gateway/audit/revocations.py):
each revocation reaches the listener at commit, and a listener whose connection is killed
forgets everything it cached and listens again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.audit import migrate
from gateway.audit.database import open_engine
from gateway.audit.revocations import CHANNEL, watch_revocations
from gateway.audit.tokens import SqlTokenStore
from gateway.identity.tokens import new_token
from tests.support.postgres import ThrowawayPostgres

pytestmark = [pytest.mark.postgres]


class Heard:
    def __init__(self) -> None:
        self.revoked: list[str] = []
        self.forgot_all = 0
        self.changed = asyncio.Event()

    def forget(self, token_id: str) -> None:
        self.revoked.append(token_id)
        self.changed.set()

    def forget_all(self) -> None:
        self.forgot_all += 1
        self.changed.set()

    async def until(self, condition: object, timeout_s: float = 5.0) -> None:
        async with asyncio.timeout(timeout_s):
            while not condition():  # type: ignore[operator]
                self.changed.clear()
                await self.changed.wait()


DATABASE = "revocations"
"""A database of the test's own: the session's gateway listens on the main one, and only
this test's listener may be killed."""


@pytest.fixture
async def engine(postgres: ThrowawayPostgres) -> AsyncIterator[AsyncEngine]:
    conn = await asyncpg.connect(postgres.libpq_dsn())
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE):
            await conn.execute(f"CREATE DATABASE {DATABASE}")
    finally:
        await conn.close()
    await asyncio.to_thread(migrate.upgrade, postgres.dsn(DATABASE))
    engine = open_engine(postgres.dsn(DATABASE), 3.0)
    yield engine
    await engine.dispose()


async def test_a_revocation_is_heard_and_a_lost_listener_forgets_all(
    engine: AsyncEngine, postgres: ThrowawayPostgres
) -> None:
    heard = Heard()
    listening = asyncio.create_task(
        watch_revocations(engine, heard.forget, heard.forget_all, retry_s=0.1)
    )
    try:
        await heard.until(lambda: heard.forgot_all == 1)  # listening: the cache starts clean
        store = SqlTokenStore(engine, 3.0)
        made = new_token("erin", ("developers",))
        await store.add(made.stored)
        assert await store.revoke(made.stored.token_id)
        await heard.until(lambda: heard.revoked == [made.stored.token_id])
        # when the listening connection is killed by the server
        conn = await asyncpg.connect(postgres.libpq_dsn())
        try:
            killed = await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE query ILIKE $1 AND datname = $2",
                f"%LISTEN%{CHANNEL}%",
                DATABASE,
            )
        finally:
            await conn.close()
        assert killed == 1
        # then everything cached is forgotten (once lost, once listening again) ...
        await heard.until(lambda: heard.forgot_all >= 3)
        # ... and revocations are heard again
        other = new_token("frida", ("developers",))
        await store.add(other.stored)
        await store.revoke(other.stored.token_id)
        await heard.until(lambda: other.stored.token_id in heard.revoked)
    finally:
        listening.cancel()
        with pytest.raises(asyncio.CancelledError):
            await listening


async def test_off_postgresql_there_is_nothing_to_hear(tmp_path: object) -> None:
    engine = open_engine(f"sqlite+aiosqlite:///{tmp_path}/audit.db")
    try:
        heard = Heard()
        await asyncio.wait_for(watch_revocations(engine, heard.forget, heard.forget_all), 1)
        assert (heard.revoked, heard.forgot_all) == ([], 0)
    finally:
        await engine.dispose()
