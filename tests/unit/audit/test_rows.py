"""rows: every field of every audit item lands in a column of audit_events, none lost."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

import pytest

from gateway.audit.records import AuditEvent, Completion, DecisionRecord, Resolution
from gateway.audit.rows import EVENT_COLUMNS, event_row

DECISION = DecisionRecord(
    "r" * 32, datetime.now(UTC), "alice", ("developers",), "token", "127.0.0.1", "info",
    "/m/@v/master.info", "m", "master", None, "allow", ("ok",), None, "r1", "public", None,
    None, '{"shape":1,"request":{"version":"master"}}', 1,
)  # fmt: skip
RESOLUTION = Resolution("r" * 32, "v1.1.0", "master", "deny", ("no",), "r1", "http://u")
COMPLETION = Completion("r" * 32, 200, 9, "0" * 64, 1.5, datetime.now(UTC))


def as_columns(event: AuditEvent, *, json_text: bool) -> dict[str, object]:
    return dict(zip(EVENT_COLUMNS, event_row(event, json_text=json_text), strict=True))


@pytest.mark.parametrize("item", [DECISION, RESOLUTION, COMPLETION], ids=lambda i: type(i).__name__)
def test_every_field_of_an_item_has_a_column(item: object) -> None:
    assert {f.name for f in dataclasses.fields(item)} <= set(EVENT_COLUMNS)  # type: ignore[arg-type]


@pytest.mark.parametrize("json_text", [True, False])
def test_a_decision_event_row_holds_its_numbering_its_kind_and_its_fields(json_text: bool) -> None:
    row = as_columns(AuditEvent("w1", 7, DECISION), json_text=json_text)
    assert (row["writer_id"], row["seq"], row["event"]) == ("w1", 7, "decision")
    assert row["path"] == "/m/@v/master.info" and row["input_shape"] == 1
    assert row["bytes"] is None and row["prev_hash"] is None and row["record_hash"] is None
    if json_text:  # for asyncpg: JSON as text, the policy input exactly as sent
        assert row["groups"] == '["developers"]' and row["reasons"] == '["ok"]'
        assert row["policy_input"] == DECISION.policy_input
    else:  # for SQLAlchemy's JSON type: Python values
        assert row["groups"] == ["developers"] and row["reasons"] == ["ok"]
        assert row["policy_input"] == json.loads(str(DECISION.policy_input))


def test_a_completion_without_reasons_leaves_them_null() -> None:
    row = as_columns(AuditEvent("w", 1, COMPLETION), json_text=True)
    assert row["event"] == "completion" and row["reasons"] is None and row["decision"] is None
