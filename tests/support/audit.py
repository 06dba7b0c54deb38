"""Read the audit trail straight from PostgreSQL, as an auditor's SQL would: from the
``audit_records`` view (one row per request over the append-only ``audit_events``)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import asyncpg


def audit_rows(libpq_dsn: str, where: str = "TRUE", *args: Any) -> list[dict[str, Any]]:
    """Rows of the audit_records view matching ``where`` (with $1.. ``args``), oldest
    first; ``groups`` and ``reasons`` decoded (asyncpg hands JSONB over as its text)."""

    async def fetch() -> list[dict[str, Any]]:
        conn = await asyncpg.connect(libpq_dsn)
        try:
            rows = await conn.fetch(
                f"SELECT * FROM audit_records WHERE {where} ORDER BY received_at", *args
            )
        finally:
            await conn.close()
        out = []
        for row in rows:
            item = dict(row)
            item["reasons"] = json.loads(item["reasons"])
            item["groups"] = json.loads(item["groups"])
            out.append(item)
        return out

    return asyncio.run(fetch())


def only_row(libpq_dsn: str, request_id: str) -> dict[str, Any]:
    """The one audit row of ``request_id`` (fails when there is none, or more than one)."""
    rows = audit_rows(libpq_dsn, "request_id = $1", request_id)
    assert len(rows) == 1, f"{len(rows)} audit rows for {request_id}"
    return rows[0]


def completed_row(libpq_dsn: str, request_id: str, timeout_s: float = 10) -> dict[str, Any]:
    """The audit row of ``request_id`` once its completion is in (it is written just after
    the answer, without the client waiting); fails when it does not come in ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        row = only_row(libpq_dsn, request_id)
        if row["completed_at"] is not None:
            return row
        if time.monotonic() > deadline:
            raise AssertionError(f"no completion recorded for {request_id} in {timeout_s} s")
        time.sleep(0.05)


def stored_input(libpq_dsn: str, request_id: str) -> dict[str, Any]:
    """The policy input stored with the decision event of ``request_id``."""

    async def fetch() -> Any:
        conn = await asyncpg.connect(libpq_dsn)
        try:
            return await conn.fetchval(
                "SELECT policy_input FROM audit_events"
                " WHERE request_id = $1 AND event = 'decision'",
                request_id,
            )
        finally:
            await conn.close()

    text = asyncio.run(fetch())
    assert text is not None, f"no decision event with a policy input for {request_id}"
    return dict(json.loads(text))
