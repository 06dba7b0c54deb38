"""Audit records as flat rows, in one fixed column order shared by every sink."""

import json

from .records import Completion, DecisionRecord

DECISION_FIELDS: tuple[str, ...] = tuple(DecisionRecord.__dataclass_fields__)
COMPLETION_FIELDS: tuple[str, ...] = (
    "request_id",
    "status",
    "bytes",
    "sha256",
    "duration_ms",
    "completed_at",
    "upstream",
    "error_code",
)


def decision_row(record: DecisionRecord) -> tuple[object, ...]:
    values = []
    for name in DECISION_FIELDS:
        value = getattr(record, name)
        values.append(json.dumps(list(value)) if name in ("groups", "reasons") else value)
    return tuple(values)


def completion_row(completion: Completion) -> tuple[object, ...]:
    return tuple(getattr(completion, name) for name in COMPLETION_FIELDS)
