"""Read the version in an upstream's ``.info`` or ``@latest`` answer as the go command does.

The go command decodes that JSON with ``encoding/json`` into ``modfetch.RevInfo``
(cmd/go/internal/modfetch/proxy.go, ``proxyRepo.Stat`` and ``proxyRepo.Latest``:
``json.Unmarshal(data, info)``). ``encoding/json`` matches an object key to a struct field
by exact name, else case-insensitively (encoding/json/decode.go ``decodeState.object``:
``byExactName``, then ``byFoldedName[foldName(key)]``), folding every rune to the smallest
rune of its ``unicode.SimpleFold`` orbit (fold.go ``foldName``): ``version``, ``VERSION``
and ``"Ver\\u017fion"`` (U+017F LATIN SMALL LETTER LONG S) all set ``Version``. When
several keys set one field, each assignment overwrites the last, so the last key wins.

A plain ``json.loads(body)["Version"]`` reads ``{"Version":"v1.0.0","version":"v1.0.1"}``
as v1.0.0 while the go command uses v1.0.1: the policy would judge one version and the
developer get another. So:

- more than one key that sets the same ``RevInfo`` field (``Version``, ``Time``,
  ``Origin``) is refused as ambiguous, naming the keys;
- otherwise the single key that sets ``Version`` is read, whatever its case, as Go would;
- a document ``encoding/json`` rejects but Python's ``json`` accepts is refused: ``NaN``
  and ``Infinity``, a byte-order mark, UTF-16/32 (``json.loads`` of bytes guesses the
  encoding; Go reads only UTF-8), and invalid UTF-8 (Go reads it as U+FFFD).

Both parsers reject trailing data after the value and control characters in strings. A
lone surrogate escape (``"\\ud800"``) decodes to U+FFFD in Go and to a surrogate in Python:
in a key it folds to no field name either way; in the Version it is refused here.

``resolved_version`` adds what the gateway needs on top: the version must be canonical and
of the module's major, since the policy is asked again about exactly that version.
"""

import json
from typing import Any

from ..errors import UpstreamError
from . import semver
from .paths import check_path_major

REVINFO_FIELDS = ("Version", "Time", "Origin")
"""The fields of modfetch.RevInfo that JSON can set (Name and Short are ``json:"-"``)."""

# The non-ASCII runes whose SimpleFold orbit holds an ASCII letter, folded to it: the only
# way a key with a non-ASCII rune can match an ASCII field name (every other non-ASCII rune
# folds to a non-ASCII one). tests/unit/goproxy/test_info.py checks this against Go.
_NON_ASCII_FOLDS = {"\u017f": "S", "\u212a": "K"}  # LONG S, KELVIN SIGN


def fold_name(name: str) -> str:
    """``encoding/json``'s foldName, exact for every key that can fold to an ASCII name."""
    return "".join(_NON_ASCII_FOLDS.get(c, c.upper() if "a" <= c <= "z" else c) for c in name)


_FIELD_BY_FOLD = {fold_name(f): f for f in REVINFO_FIELDS}


class _Members(list[tuple[str, Any]]):
    """One JSON object's members in document order, duplicate keys kept."""


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _decode(body: bytes) -> _Members:
    text = body.decode("utf-8")  # strict: no encoding guessed; a BOM stays, json refuses it
    value = json.loads(text, parse_constant=_refuse_constant, object_pairs_hook=_Members)
    if not isinstance(value, _Members):
        raise ValueError("not a JSON object")
    return value


def read_version(body: bytes, upstream: str) -> str:
    """The ``Version`` the go command reads from ``body``; UpstreamError if unreadable or
    ambiguous. Whether it is canonical is the caller's check."""
    try:
        members = _decode(body)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise UpstreamError(f"upstream {upstream} sent unreadable version info") from exc
    by_field: dict[str, list[tuple[str, Any]]] = {}
    for key, value in members:
        field = _FIELD_BY_FOLD.get(fold_name(key))
        if field is not None:
            by_field.setdefault(field, []).append((key, value))
    for field in REVINFO_FIELDS:
        setting = by_field.get(field, [])
        if len(setting) > 1:
            keys = ", ".join(key for key, _ in setting)
            raise UpstreamError(f"upstream {upstream} sent an ambiguous .info: keys {keys}")
    if "Version" not in by_field:
        raise UpstreamError(f"upstream {upstream} sent version info without a Version")
    [(_, version)] = by_field["Version"]
    if not isinstance(version, str):
        raise UpstreamError(f"upstream {upstream} sent a Version that is not a string")
    if not version.isascii():  # versions are ASCII; Go would read a lone surrogate as U+FFFD
        raise UpstreamError(f"upstream {upstream} sent a Version that is not ASCII")
    return version


def resolved_version(body: bytes, upstream: str, module: str) -> str:
    """The canonical version an upstream resolved a revision query or ``@latest`` of
    ``module`` to, read as the go command reads it: the policy judges the version the
    developer gets. UpstreamError when unreadable, not canonical or of another major."""
    version = read_version(body, upstream)
    if not semver.is_canonical(version):
        raise UpstreamError(f"upstream {upstream} resolved to a non-canonical version")
    if check_path_major(version, module) is not None:
        raise UpstreamError(f"upstream {upstream} resolved to a version of another major")
    return version
