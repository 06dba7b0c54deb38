"""Make every text of an audit item safe for the store before it is queued.

A request path is caller-controlled: ``/x%00/@v/list`` put a NUL byte into the audit row,
PostgreSQL refused it, and the whole group-commit batch (other users' requests) failed
with it. So every text an item carries is, before it reaches the writer's queue:

- redacted (``redaction.redact_secrets``): a token pasted into a path is not stored;
- escaped: C0 controls and DEL become ``\\xNN``; a byte that was not UTF-8 (kept by
  ``surrogateescape``) becomes ``\\xNN`` with its own value (always >= 80, so never
  confused with a control); C1 controls and other lone surrogates become ``\\uNNNN``; a
  backslash becomes two. The stored text is printable, valid UTF-8, unambiguous, and still
  tells an auditor what was sent;
- capped at its column's length (taken from the table definition, one source of truth),
  ending in ``…`` when cut.

``ascii_only`` is the stricter form the writer falls back to when the store still refuses
a row: every non-ASCII character escaped too.
"""

import dataclasses
import re
from typing import TypeVar

from sqlalchemy import String

from ..redaction import redact_secrets
from .models import audit_records
from .records import AuditItem

MAX_LIST_ITEMS = 64
MAX_LIST_ITEM_CHARS = 512
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\\\ud800-\udfff]")
_NON_ASCII = re.compile(r"[^\x20-\x7e]")

_Item = TypeVar("_Item", bound=AuditItem)


def _escape_char(match: re.Match[str]) -> str:
    ch = match.group(0)
    if ch == "\\":
        return "\\\\"
    code = ord(ch)
    if code < 0x80:  # C0 controls and DEL
        return f"\\x{code:02x}"
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8, kept by surrogateescape
        return f"\\x{code - 0xDC00:02x}"
    return f"\\u{code:04x}"  # C1 controls, other lone surrogates, non-ASCII (ascii_only)


def _column_limit(name: str) -> int | None:
    if name not in audit_records.c:
        return None
    column_type = audit_records.c[name].type
    return column_type.length if isinstance(column_type, String) else None


_LIMITS = {column.name: _column_limit(column.name) for column in audit_records.c}


def safe_text(value: str, limit: int | None, *, ascii_only: bool = False) -> str:
    """``value`` redacted, escaped and cut to ``limit`` characters (None: no limit)."""
    text = _UNSAFE.sub(_escape_char, redact_secrets(value))
    if ascii_only:
        text = _NON_ASCII.sub(_escape_char, text)
    if limit is not None and len(text) > limit:
        marker = "..." if ascii_only else "…"
        text = text[: limit - len(marker)] + marker
    return text


def storable(item: _Item, *, ascii_only: bool = False) -> _Item:
    """A copy of ``item`` whose every text the store will take (see the module docstring)."""
    changes: dict[str, object] = {}
    for field in dataclasses.fields(item):
        value = getattr(item, field.name)
        if isinstance(value, str):
            changes[field.name] = safe_text(value, _LIMITS.get(field.name), ascii_only=ascii_only)
        elif isinstance(value, tuple):
            changes[field.name] = tuple(
                safe_text(str(v), MAX_LIST_ITEM_CHARS, ascii_only=ascii_only)
                for v in value[:MAX_LIST_ITEMS]
            )
    return dataclasses.replace(item, **changes)  # type: ignore[arg-type]
