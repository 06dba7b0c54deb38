"""AuditWriter: group commit of decision records and completions.

Each ``record`` call waits until its row is committed, but concurrent calls share one
transaction: a single task drains the queue, writes every waiting row with one
executemany, commits once and wakes all the callers. Under load that turns N commits into
one; alone, a request pays one commit, as before.

If the transaction fails, every caller in it gets an AuditError and is refused: nothing
is served whose decision is not durable.
"""

import asyncio
import contextlib
import json
import logging
from dataclasses import asdict

from sqlalchemy import bindparam, update
from sqlalchemy.ext.asyncio import AsyncEngine

from ..errors import AuditError
from .models import audit_records
from .records import Completion, DecisionRecord

log = logging.getLogger(__name__)

MAX_BATCH_ROWS = 200

_complete_stmt = (
    update(audit_records)
    .where(audit_records.c.request_id == bindparam("rid"))
    .values(
        status=bindparam("status"),
        bytes=bindparam("bytes"),
        sha256=bindparam("sha256"),
        duration_ms=bindparam("duration_ms"),
        completed_at=bindparam("completed_at"),
        upstream=bindparam("upstream_used"),
        error_code=bindparam("error"),
    )
)


def _decision_row(record: DecisionRecord) -> dict[str, object]:
    row = asdict(record)
    row["groups"] = json.dumps(list(record.groups))
    row["reasons"] = json.dumps(list(record.reasons))
    return row


def _completion_row(completion: Completion) -> dict[str, object]:
    return {
        "rid": completion.request_id,
        "status": completion.status,
        "bytes": completion.bytes,
        "sha256": completion.sha256,
        "duration_ms": completion.duration_ms,
        "completed_at": completion.completed_at,
        "upstream_used": completion.upstream,
        "error": completion.error_code,
    }


_Item = tuple[DecisionRecord | Completion, "asyncio.Future[None]"]


class AuditWriter:
    """Writes audit rows in grouped transactions. Use as ``async with AuditWriter(engine)``."""

    def __init__(self, engine: AsyncEngine, max_batch_rows: int = MAX_BATCH_ROWS) -> None:
        self._engine = engine
        self._max_batch_rows = max_batch_rows
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._pending_completions: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> "AuditWriter":
        self._task = asyncio.create_task(self._run(), name="audit-writer")
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._pending_completions:
            await asyncio.wait(self._pending_completions, timeout=10)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _submit(self, item: DecisionRecord | Completion) -> None:
        if self._task is None or self._task.done():
            raise AuditError("audit writer is not running")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((item, future))
        await future

    async def record(self, record: DecisionRecord) -> None:
        """Return once ``record`` is committed; raise AuditError if it could not be."""
        await self._submit(record)

    def complete_later(self, completion: Completion) -> None:
        """Queue ``completion`` without waiting: the answer is already on its way."""
        task = asyncio.create_task(self._complete(completion))
        self._pending_completions.add(task)
        task.add_done_callback(self._pending_completions.discard)

    async def _complete(self, completion: Completion) -> None:
        try:
            await self._submit(completion)
        except AuditError as exc:
            log.error("audit completion for %s lost: %s", completion.request_id, exc.reason)

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch_rows and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            error = await self._write(batch)
            for _, future in batch:
                if future.done():
                    continue
                if error is None:
                    future.set_result(None)
                else:
                    future.set_exception(error)

    async def _write(self, batch: list[_Item]) -> AuditError | None:
        decisions = [_decision_row(i) for i, _ in batch if isinstance(i, DecisionRecord)]
        completions = [_completion_row(i) for i, _ in batch if isinstance(i, Completion)]
        try:
            async with self._engine.begin() as conn:
                if decisions:
                    await conn.execute(audit_records.insert(), decisions)
                if completions:
                    await conn.execute(_complete_stmt, completions)
        except Exception as exc:  # whatever the driver raises, the rows are not durable
            log.error("audit write of %d rows failed: %s", len(batch), exc)
            return AuditError("audit store unavailable: request refused (fail closed)")
        return None
