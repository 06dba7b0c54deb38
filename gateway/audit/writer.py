"""AuditWriter: group commit of decision records, resolutions and completions.

Each ``record`` call waits until its row is committed, but concurrent calls share one
transaction: a single task drains the queue, writes every waiting row with one COPY (or
INSERT), commits once and wakes all the callers. Under load that turns N commits into
one; alone, a request pays one commit, as before.

Every item becomes one appended event (``records.AuditEvent``), numbered by the writer:
``writer_id`` is random per writer run, ``seq`` counts that run's events from 1 in the
order they are written. A batch the store refused for certain (``RowRejectedError``: its
transaction rolled back) gives its numbers back, so the events a writer committed are
numbered without gaps except where a write's outcome is unknown (a timeout, a lost
connection): such numbers are never reused, as that write may have committed.

Three promises hold whatever callers send or the store does:

- Every text is made safe for the store before it is queued (``storable.py``): escaped,
  redacted and cut to its column, so no caller can make the store refuse a row.
- One row the store still refuses never fails the others: the batch is written again row
  by row; the refused row is written once more in its ASCII-escaped form, and only if that
  fails too is its own request refused. Each such row is logged with its request id and
  counted (``modgate_audit_rows_isolated_total``).
- A stalled store never holds a request: a batch write is cut off after ``timeout_s``
  (its transaction rolled back), and a row still queued past ``timeout_s`` is not written
  at all. Either way its caller gets an AuditError and the request is refused (fail
  closed); at worst about twice ``timeout_s`` after it asked.
"""

import asyncio
import contextlib
import logging
import secrets
from dataclasses import dataclass

from ..errors import AuditError
from ..observability import Metrics
from .records import AuditEvent, AuditItem, Completion, DecisionRecord, Resolution
from .sink import AuditSink, RowRejectedError
from .storable import storable

log = logging.getLogger(__name__)

MAX_BATCH_ROWS = 200
DEFAULT_TIMEOUT_S = 3.0


@dataclass(slots=True)
class _Queued:
    item: AuditItem
    future: "asyncio.Future[None]"
    deadline: float


class AuditWriter:
    """Writes audit rows in grouped transactions. Use as ``async with AuditWriter(sink)``."""

    def __init__(
        self,
        sink: AuditSink,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        metrics: Metrics | None = None,
        max_batch_rows: int = MAX_BATCH_ROWS,
    ) -> None:
        self._sink = sink
        self._timeout_s = timeout_s
        self._metrics = Metrics() if metrics is None else metrics
        self._max_batch_rows = max_batch_rows
        self._queue: asyncio.Queue[_Queued] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._pending_completions: set[asyncio.Task[None]] = set()
        self._writer_id = ""
        self._next_seq = 1

    @property
    def writer_id(self) -> str:
        """This run's id in ``audit_events.writer_id`` (empty before the writer starts)."""
        return self._writer_id

    @property
    def queued(self) -> int:
        """Rows waiting for the writer (a gauge for /metrics)."""
        return self._queue.qsize()

    async def __aenter__(self) -> "AuditWriter":
        self._writer_id, self._next_seq = secrets.token_hex(16), 1
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

    async def _submit(self, item: AuditItem) -> None:
        if self._task is None or self._task.done():
            raise AuditError("audit writer is not running")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._queue.put_nowait(_Queued(storable(item), future, loop.time() + self._timeout_s))
        await future

    async def record(self, record: DecisionRecord) -> None:
        """Return once ``record`` is committed; raise AuditError if it could not be."""
        await self._submit(record)

    async def resolve(self, resolution: Resolution) -> None:
        """Return once ``resolution`` is committed as its own event; raise AuditError."""
        await self._submit(resolution)

    def complete_later(self, completion: Completion) -> None:
        """Queue ``completion`` without waiting: the answer is already on its way."""
        task = asyncio.create_task(self._complete(completion))
        self._pending_completions.add(task)
        task.add_done_callback(self._pending_completions.discard)

    async def _complete(self, completion: Completion) -> None:
        try:
            await self._submit(completion)
        except AuditError as exc:
            self._metrics.audit_lost_completions.inc()
            log.error("audit completion for %s lost: %s", completion.request_id, exc.reason)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch_rows and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            now = loop.time()
            live = []
            for queued in batch:
                if queued.deadline <= now:  # its caller must not wait longer: never written
                    self._metrics.audit_write_failures.inc(reason="late")
                    _settle(queued, AuditError(self._late_reason()))
                else:
                    live.append(queued)
            if live:
                await self._write(live)

    def _late_reason(self) -> str:
        return (
            f"audit store did not take the record within {self._timeout_s:g} s: "
            "request refused (fail closed)"
        )

    async def _write_items(self, items: list[AuditItem]) -> None:
        """One transaction, cut off after ``timeout_s``; raises what the sink raised."""
        first = self._next_seq
        events = [AuditEvent(self._writer_id, first + i, item) for i, item in enumerate(items)]
        self._next_seq = first + len(events)
        try:
            with self._metrics.timed_commit(len(items)):
                async with asyncio.timeout(self._timeout_s):
                    await self._sink.write(events)
        except RowRejectedError:
            self._next_seq = first  # rolled back for certain: the numbers are free again
            raise

    async def _write(self, batch: list[_Queued]) -> None:
        try:
            await self._write_items([q.item for q in batch])
        except RowRejectedError as exc:
            await self._isolate(batch, exc)
            return
        except Exception as exc:  # whatever the driver raises, the rows are not durable
            self._fail(batch, exc)
            return
        for queued in batch:
            _settle(queued, None)

    def _fail(self, batch: list[_Queued], exc: BaseException) -> None:
        timed_out = isinstance(exc, TimeoutError)
        if timed_out:
            reason = self._late_reason()
        else:
            reason = "audit store unavailable: request refused (fail closed)"
        self._metrics.audit_write_failures.inc(
            len(batch), reason="timeout" if timed_out else "unavailable"
        )
        log.error("audit write of %d rows failed: %s", len(batch), type(exc).__name__)
        for queued in batch:
            _settle(queued, AuditError(reason))

    async def _isolate(self, batch: list[_Queued], exc: RowRejectedError) -> None:
        """Write ``batch`` row by row, so the rows the store takes are not failed by one
        it refuses. Rows keep their order (a completion after its decision)."""
        log.warning(
            "audit store refused a row in a batch of %d (%s): writing them one by one",
            len(batch),
            exc,
        )
        for index, queued in enumerate(batch):
            try:
                await self._write_one(queued)
            except Exception as store_exc:  # the store went away meanwhile
                self._fail(batch[index:], store_exc)
                return

    async def _write_one(self, queued: _Queued) -> None:
        request_id = queued.item.request_id
        try:
            await self._write_items([queued.item])
        except RowRejectedError as exc:
            try:
                await self._write_items([storable(queued.item, ascii_only=True)])
            except RowRejectedError as again:
                self._metrics.audit_rows_isolated.inc(result="refused")
                log.error(
                    "audit row %s refused by the store (%s): request refused", request_id, again
                )
                _settle(queued, AuditError("audit store refused this request's record: refused"))
                return
            self._metrics.audit_rows_isolated.inc(result="rewritten")
            log.warning(
                "audit row %s refused by the store (%s); written in its ASCII-escaped form",
                request_id,
                exc,
            )
        _settle(queued, None)


def _settle(queued: _Queued, error: AuditError | None) -> None:
    if queued.future.done():  # the caller went away; the row's fate no longer matters to it
        return
    if error is None:
        queued.future.set_result(None)
    else:
        queued.future.set_exception(error)
