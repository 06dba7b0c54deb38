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
import logging

from ..errors import AuditError
from .records import Completion, DecisionRecord
from .sink import AuditSink

log = logging.getLogger(__name__)

MAX_BATCH_ROWS = 200


_Item = tuple[DecisionRecord | Completion, "asyncio.Future[None]"]


class AuditWriter:
    """Writes audit rows in grouped transactions. Use as ``async with AuditWriter(sink)``."""

    def __init__(self, sink: AuditSink, max_batch_rows: int = MAX_BATCH_ROWS) -> None:
        self._sink = sink
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
        await self._sink.close()

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
        decisions = [item for item, _ in batch if isinstance(item, DecisionRecord)]
        completions = [item for item, _ in batch if isinstance(item, Completion)]
        try:
            await self._sink.write(decisions, completions)
        except Exception as exc:  # whatever the driver raises, the rows are not durable
            log.error("audit write of %d rows failed: %s", len(batch), exc)
            return AuditError("audit store unavailable: request refused (fail closed)")
        return None
