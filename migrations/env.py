"""Alembic environment for the audit database (PostgreSQL via asyncpg, SQLite via aiosqlite)."""

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection

from gateway.audit.database import open_engine
from gateway.audit.models import metadata
from gateway.settings import DEFAULT_DATABASE_URL

config = context.config


def _url() -> str:
    return str(
        config.attributes.get("database_url")
        or os.environ.get("MODGATE_AUDIT_DATABASE_URL")
        or DEFAULT_DATABASE_URL
    )


def _migrate(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_online() -> None:
    engine = open_engine(_url())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_migrate)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_online())
