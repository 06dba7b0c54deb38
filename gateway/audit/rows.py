"""Audit items as flat rows, in one fixed column order shared by every sink."""

import json

from .records import Completion, DecisionRecord, Resolution

DECISION_FIELDS: tuple[str, ...] = tuple(DecisionRecord.__dataclass_fields__)
RESOLUTION_FIELDS: tuple[str, ...] = tuple(Resolution.__dataclass_fields__)
COMPLETION_FIELDS: tuple[str, ...] = tuple(Completion.__dataclass_fields__)
_JSON_LISTS = frozenset({"groups", "reasons"})


def _row(
    item: DecisionRecord | Resolution | Completion, fields: tuple[str, ...]
) -> tuple[object, ...]:
    values = []
    for name in fields:
        value = getattr(item, name)
        if name in _JSON_LISTS and value is not None:
            value = json.dumps(list(value))
        values.append(value)
    return tuple(values)


def decision_row(record: DecisionRecord) -> tuple[object, ...]:
    return _row(record, DECISION_FIELDS)


def resolution_row(resolution: Resolution) -> tuple[object, ...]:
    return _row(resolution, RESOLUTION_FIELDS)


def completion_row(completion: Completion) -> tuple[object, ...]:
    return _row(completion, COMPLETION_FIELDS)
