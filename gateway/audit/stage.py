"""open_audit: the record stage, opened from the ``[audit]`` settings.

One database engine serves the writer (decision records, completions) and the token store
the identify stage reads; ``checks`` is the stage's own readiness (the store answers).
"""

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from ..health import Check
from ..observability import Metrics
from ..settings import AuditSettings
from .database import open_engine
from .revocations import watch_revocations
from .sink import open_sink
from .tokens import SqlTokenStore
from .writer import AuditWriter


@dataclass(frozen=True, slots=True)
class AuditStage:
    writer: AuditWriter
    tokens: SqlTokenStore
    engine: AsyncEngine
    timeout_s: float

    async def reachable(self) -> bool:
        async with asyncio.timeout(self.timeout_s), self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True

    def checks(self) -> list[Check]:
        return [Check("audit store unreachable", self.reachable)]

    async def watch_revocations(
        self, forget: Callable[[str], None], forget_all: Callable[[], None]
    ) -> None:
        """Until cancelled, hear token revocations (PostgreSQL; ``revocations.py``)."""
        await watch_revocations(self.engine, forget, forget_all)


@asynccontextmanager
async def open_audit(settings: AuditSettings, metrics: Metrics) -> AsyncIterator[AuditStage]:
    async with AsyncExitStack() as stack:
        engine = open_engine(settings.database_url, settings.timeout_s)
        stack.push_async_callback(engine.dispose)
        sink = open_sink(settings.database_url, engine, settings.timeout_s)
        writer = await stack.enter_async_context(
            AuditWriter(sink, timeout_s=settings.timeout_s, metrics=metrics)
        )
        metrics.gauge(
            "modgate_audit_queue_rows",
            "Audit rows waiting for the writer.",
            lambda: writer.queued,
        )
        tokens = SqlTokenStore(engine, settings.timeout_s)
        yield AuditStage(writer, tokens, engine, settings.timeout_s)
