"""Read the audit trail straight from PostgreSQL, as an auditor's SQL would."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg


def audit_rows(libpq_dsn: str, where: str = "TRUE", *args: Any) -> list[dict[str, Any]]:
    """Rows of audit_records matching ``where`` (with $1.. ``args``), oldest first."""

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
