"""RequestTrail turns what the stages learnt into audit records, through the real writer.

The store is a SQLite audit database built by the migrations, opened by the record stage's
own entry (``open_audit``); rows are read back with plain SQL, as an auditor would.
"""

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from sqlalchemy import text

from gateway.audit import migrate
from gateway.audit.stage import AuditStage, open_audit
from gateway.goproxy.requests import ModuleRequest, SumdbRequest
from gateway.http.delivery import Delivery
from gateway.identity.base import Identity
from gateway.observability import Metrics
from gateway.policy.decision import Decision
from gateway.policy.input import PolicyInput
from gateway.settings import AuditSettings
from gateway.trail import RequestTrail

ALICE = Identity(subject="alice", groups=("developers",), method="token")
ALLOW = Decision(allowed=True, reasons=(), route="public", revision="r.1")


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path}/audit.db"
    migrate.upgrade(url)  # outside the event loop (Alembic runs its own)
    return url


@pytest.fixture
async def audit(database_url: str) -> AsyncIterator[AuditStage]:
    async with open_audit(AuditSettings(database_url=database_url), Metrics()) as stage:
        yield stage


async def row(stage: AuditStage, request_id: str) -> dict[str, Any]:
    async with stage.engine.connect() as conn:
        result = await conn.execute(
            text("SELECT * FROM audit_records WHERE request_id = :id"), {"id": request_id}
        )
        rows = [dict(r._mapping) for r in result]
    assert len(rows) == 1, rows
    return rows[0]


async def completed(stage: AuditStage, request_id: str, timeout_s: float = 10) -> dict[str, Any]:
    """The row once its completion is in: it is queued, written just after the answer."""
    async with asyncio.timeout(timeout_s):
        while True:
            found = await row(stage, request_id)
            if found["completed_at"] is not None:
                return found
            await asyncio.sleep(0.01)


def trail_for(stage: AuditStage, target: ModuleRequest | SumdbRequest) -> RequestTrail:
    trail = RequestTrail(stage.writer, uuid4().hex, "/as/sent", "192.0.2.1")
    trail.target, trail.identity = target, ALICE
    return trail


async def test_an_allow_is_durable_when_allow_returns_and_completed_by_its_delivery(
    audit: AuditStage,
) -> None:
    trail = trail_for(audit, ModuleRequest("example.com/m", "zip", "v1.0.0"))
    trail.decision, trail.upstream = ALLOW, "http://upstream.test"
    await trail.allow()
    recorded = await row(audit, trail.request_id)
    assert (recorded["decision"], recorded["completed_at"]) == ("allow", None)
    assert (recorded["subject"], recorded["policy_revision"]) == ("alice", "r.1")
    digest = hashlib.sha256(b"zip").hexdigest()
    trail.delivered(Delivery(499, 3, digest, "client_disconnected"))
    done = await completed(audit, trail.request_id)
    assert (done["status"], done["bytes"], done["sha256"]) == (499, 3, digest)
    assert done["error_code"] == "client_disconnected"
    assert done["upstream"] == "http://upstream.test"


async def test_a_second_allow_without_a_resolution_writes_nothing_more(
    audit: AuditStage,
) -> None:
    trail = trail_for(audit, ModuleRequest("example.com/m", "list"))
    trail.decision = ALLOW
    await trail.allow()
    await trail.allow()
    assert (await row(audit, trail.request_id))["decision"] == "allow"


async def test_a_refusal_is_recorded_with_its_code_status_and_reasons(audit: AuditStage) -> None:
    trail = trail_for(audit, SumdbRequest("sum.example.org", "tile", tile="tile/8/0/001"))
    await trail.refuse(("policy engine unreachable",), "policy_unreachable", 503)
    recorded = await row(audit, trail.request_id)
    assert (recorded["decision"], recorded["status"]) == ("deny", 503)
    assert recorded["error_code"] == "policy_unreachable"
    assert json.loads(recorded["reasons"]) == ["policy engine unreachable"]
    assert (recorded["kind"], recorded["module"]) == ("sumdb", None)


async def test_a_refusal_after_the_allow_is_left_to_the_completion(audit: AuditStage) -> None:
    trail = trail_for(audit, ModuleRequest("example.com/m", "mod", "v1.0.0"))
    trail.decision = ALLOW
    await trail.allow()
    await trail.refuse(("no upstream answered",), "upstream_failed", 502)
    trail.complete(502, 21, "0" * 64, "upstream_failed", ("no upstream answered",))
    done = await completed(audit, trail.request_id)
    assert (done["decision"], done["status"], done["error_code"]) == (
        "allow",
        502,
        "upstream_failed",
    )
    assert json.loads(done["reasons"]) == ["no upstream answered"]


async def test_a_resolved_query_records_the_version_the_developer_gets(audit: AuditStage) -> None:
    trail = trail_for(audit, ModuleRequest("example.com/m", "info", "master", True))
    trail.decision = ALLOW
    await trail.allow()  # the query, before the upstream resolves it
    assert (await row(audit, trail.request_id))["version"] == "master"
    trail.resolved_version = "v1.2.0"
    trail.decision = Decision(False, ("v1.2.0 is blacklisted",), "public", "r.2")
    await trail.refuse(("v1.2.0 is blacklisted",), "denied_by_policy", 403)
    resolved = await row(audit, trail.request_id)
    assert (resolved["version"], resolved["requested_version"]) == ("v1.2.0", "master")
    assert (resolved["decision"], resolved["policy_revision"]) == ("deny", "r.2")


async def test_asking_notes_the_exact_text_the_policy_gets(audit: AuditStage) -> None:
    target = ModuleRequest("example.com/m", "zip", "v1.0.0")
    trail = trail_for(audit, target)
    asked = PolicyInput("id", target, ALICE, "192.0.2.1", datetime(2026, 1, 1, tzinfo=UTC))
    trail.asking(asked)
    assert trail.decided_input is asked.json_text
    assert trail.decided_shape == 1
