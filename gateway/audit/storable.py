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

The policy input document is the one exception: it is stored exactly as sent to OPA
(replaying it against another policy must give what the policy saw), never redacted or
cut. Its ``ascii_only`` form is the same JSON value with non-ASCII characters as JSON
``\\uNNNN`` escapes, so it still is the document that was sent.
"""

import dataclasses
import json
import re
from typing import TypeVar

from sqlalchemy import String

from ..redaction import SECRET_HINTS, redact_secrets
from .models import audit_events
from .records import AuditItem, Completion, DecisionRecord, Resolution

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
    if name not in audit_events.c:
        return None
    column_type = audit_events.c[name].type
    return column_type.length if isinstance(column_type, String) else None


_LIMITS = {column.name: _column_limit(column.name) for column in audit_events.c}
_VERBATIM = frozenset({"policy_input"})
_FIELDS: dict[type, tuple[str, ...]] = {
    kind: tuple(field.name for field in dataclasses.fields(kind))
    for kind in (DecisionRecord, Resolution, Completion)
}
# Anything safe_text could change: a character to escape or the start of a secret's shape.
_SUSPECT = re.compile(rf"{_UNSAFE.pattern}|{SECRET_HINTS}")


def safe_text(value: str, limit: int | None, *, ascii_only: bool = False) -> str:
    """``value`` redacted, escaped and cut to ``limit`` characters (None: no limit)."""
    fits = limit is None or len(value) <= limit
    if fits and not ascii_only and _SUSPECT.search(value) is None:
        return value  # nearly every text: one search instead of two substitutions
    text = _UNSAFE.sub(_escape_char, redact_secrets(value))
    if ascii_only:
        text = _NON_ASCII.sub(_escape_char, text)
    if limit is not None and len(text) > limit:
        marker = "..." if ascii_only else "…"
        text = text[: limit - len(marker)] + marker
    return text


def storable(item: _Item, *, ascii_only: bool = False) -> _Item:
    """A copy of ``item`` whose every text the store will take (see the module docstring);
    ``item`` itself when it already is (the common case: no copy on the hot path)."""
    changes: dict[str, object] = {}
    for name in _FIELDS[type(item)]:
        value = getattr(item, name)
        if name in _VERBATIM:
            if ascii_only and isinstance(value, str):
                changes[name] = json.dumps(json.loads(value), separators=(",", ":"))
            continue
        if isinstance(value, str):
            safe: object = safe_text(value, _LIMITS.get(name), ascii_only=ascii_only)
        elif isinstance(value, tuple):
            safe = tuple(
                safe_text(str(v), MAX_LIST_ITEM_CHARS, ascii_only=ascii_only)
                for v in value[:MAX_LIST_ITEMS]
            )
        else:
            continue
        if safe != value:
            changes[name] = safe
    return dataclasses.replace(item, **changes) if changes else item  # type: ignore[arg-type]
