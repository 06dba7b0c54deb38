"""Audit events as flat rows of ``audit_events``, in the table's column order.

One row shape for every kind of event: the columns an item has no field for are NULL.
JSON columns come either as JSON text (``json_text=True``: asyncpg hands text to a jsonb
parameter or COPY column as it is) or as Python values (for SQLAlchemy's JSON type).
"""

import dataclasses
import json
from collections.abc import Callable
from typing import cast

from .models import audit_events
from .records import AuditEvent, AuditItem, Completion, DecisionRecord, Resolution

EVENT_COLUMNS: tuple[str, ...] = tuple(column.name for column in audit_events.c)
_OWN = frozenset({"writer_id", "seq", "event"})
_JSON_LISTS = frozenset({"groups", "reasons"})
_JSON_TEXTS = frozenset({"policy_input"})  # the items carry these as JSON text already


def _fields(kind: type) -> tuple[str | None, ...]:
    """Per column of the table, the item field that fills it (None: NULL)."""
    names = {field.name for field in dataclasses.fields(kind)}
    return tuple(name if name in names and name not in _OWN else None for name in EVENT_COLUMNS)


_ITEM_FIELDS: dict[type, tuple[str | None, ...]] = {
    kind: _fields(kind) for kind in (DecisionRecord, Resolution, Completion)
}


def _list_as_text(value: object) -> object:
    return json.dumps(list(cast(tuple[str, ...], value)))


def _list_as_value(value: object) -> object:
    return list(cast(tuple[str, ...], value))


def _text_as_value(value: object) -> object:
    return json.loads(cast(str, value))


_AS_TEXT: dict[str, Callable[[object], object]] = dict.fromkeys(_JSON_LISTS, _list_as_text)
_AS_VALUE: dict[str, Callable[[object], object]] = {
    **dict.fromkeys(_JSON_LISTS, _list_as_value),
    **dict.fromkeys(_JSON_TEXTS, _text_as_value),
}


def event_row(event: AuditEvent, *, json_text: bool) -> tuple[object, ...]:
    """``event`` as one row of ``audit_events`` (values in EVENT_COLUMNS order)."""
    item: AuditItem = event.item
    convert = _AS_TEXT if json_text else _AS_VALUE
    own = {"writer_id": event.writer_id, "seq": event.seq, "event": event.kind}
    values: list[object] = []
    for column, field in zip(EVENT_COLUMNS, _ITEM_FIELDS[type(item)], strict=True):
        if field is None:
            values.append(own.get(column))
            continue
        value = getattr(item, field)
        if value is not None and field in convert:
            value = convert[field](value)
        values.append(value)
    return tuple(values)
