"""Token revocations reach every gateway at once, through PostgreSQL's LISTEN/NOTIFY.

`modgate token revoke` marks the token revoked and, in the same transaction, notifies
``CHANNEL`` with its id; PostgreSQL delivers the notification at commit to every gateway
listening, and each forgets the token from its cache of verified tokens, so the next
request with it reads the store and is refused. Without this, a revoked token would work
on a running gateway for up to ``identity.token_cache_s``.

A gateway whose listening connection is lost forgets every cached token (a revocation
may have been missed meanwhile) and listens again once it can. On SQLite there is no such
channel: the cache bound ``identity.token_cache_s`` applies (docs/deployment.md).
"""

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger(__name__)

CHANNEL = "modgate_token_revoked"
RETRY_S = 1.0


async def notify_revoked(conn: AsyncConnection, token_id: str) -> None:
    """Tell every listening gateway, at commit of ``conn``'s transaction (PostgreSQL only)."""
    if conn.dialect.name == "postgresql":
        await conn.execute(
            text("SELECT pg_notify(:channel, :id)"), {"channel": CHANNEL, "id": token_id}
        )


async def watch_revocations(
    engine: AsyncEngine,
    forget: Callable[[str], None],
    forget_all: Callable[[], None],
    *,
    retry_s: float = RETRY_S,
) -> None:
    """Until cancelled: ``forget(token_id)`` for each revocation notified; ``forget_all()``
    when listening starts and whenever the connection is lost. Returns at once off
    PostgreSQL."""
    if engine.dialect.name != "postgresql":
        return
    while True:
        try:
            await _listen(engine, forget, forget_all)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # PostgreSQL down: the cache bound applies meanwhile
            log.warning("token revocations not heard (%s): retrying", type(exc).__name__)
        forget_all()
        await asyncio.sleep(retry_s)


async def _listen(
    engine: AsyncEngine, forget: Callable[[str], None], forget_all: Callable[[], None]
) -> None:
    """Listen on one connection until it is lost."""
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection  # asyncpg.Connection
        lost = asyncio.Event()
        driver.add_termination_listener(lambda _conn: lost.set())

        def revoked(_conn: object, _pid: int, _channel: str, payload: str) -> None:
            forget(payload)

        await driver.add_listener(CHANNEL, revoked)
        forget_all()  # what was revoked before this connection listened
        log.info("listening for token revocations")
        await lost.wait()
        await conn.invalidate()  # dead: never back into the pool for a request to find
