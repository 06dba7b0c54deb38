"""PolicyInput: one decision's input, a frozen value that is its own JSON text.

The documented, versioned shape (docs/policy.md, ``shape`` 1) is built once, when the value
is made, and kept as ``json``: the exact text OPA receives (``opa.py`` wraps it in
``{"input": ...}`` without serialising it again), the audit trail stores beside the decision,
and a decision cache will key on. One text, so what was decided, what was recorded and what
is looked up can never differ by a key order or an escape.

Typed values go in; the document carries derived fields Rego authors would otherwise
recompute (``major``, ``version_is_query``, ``resolved``). ``shape`` is bumped whenever a
field changes meaning, so policies can refuse inputs they do not know.

tests/golden/policy_input.json holds the text of representative inputs, byte for byte;
the Python tests, the Rego tests and docs/policy.md all read that one file.
"""

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..goproxy import semver
from ..goproxy.requests import ModuleRequest, SumdbRequest
from ..identity.base import Identity

INPUT_SHAPE = 1


@dataclass(frozen=True, slots=True)
class PolicyInput:
    """The input document for one decision.

    ``resolved_version`` is set when the gateway asks again about the canonical version an
    upstream resolved for a revision query or ``@latest``."""

    request_id: str
    target: ModuleRequest | SumdbRequest
    identity: Identity
    client_address: str
    now: datetime
    resolved_version: str | None = None
    listed_versions: tuple[str, ...] | None = None
    """The versions of an upstream's ``@v/list`` answer, when the gateway asks which of
    them to hide (``request.versions``; absent otherwise)."""
    json_text: str = field(init=False, repr=False, compare=False)
    """The document as compact JSON (ASCII, key order as documented): made once, never again."""

    def __post_init__(self) -> None:
        text = json.dumps(self.document(), separators=(",", ":"), ensure_ascii=True)
        object.__setattr__(self, "json_text", text)  # frozen: set once, here

    @property
    def shape(self) -> int:
        return INPUT_SHAPE

    def document(self) -> dict[str, Any]:
        """The document as Python values (for reading; what is sent is ``json_text``)."""
        target, resolved = self.target, self.resolved_version
        version = resolved if resolved is not None else target.version
        major = semver.major(version) if version and semver.is_canonical(version) else None
        is_query = isinstance(target, ModuleRequest) and target.version_is_query
        sumdb = (
            {"database": target.database, "kind": target.sumdb_kind}
            if isinstance(target, SumdbRequest)
            else None
        )
        return {
            "shape": INPUT_SHAPE,
            "request": {
                "kind": target.kind,
                "module": target.module,
                "version": version,
                "version_is_query": is_query and resolved is None,
                "resolved": resolved is not None,
                "major": major,
                "sumdb": sumdb,
                "id": self.request_id,
                **(
                    {} if self.listed_versions is None else {"versions": list(self.listed_versions)}
                ),
            },
            "identity": {
                "authenticated": self.identity.authenticated,
                "subject": self.identity.subject,
                "groups": list(self.identity.groups),
                "method": self.identity.method,
                "details": dict(self.identity.details),
            },
            "client": {"address": self.client_address},
            "time": {"rfc3339": _rfc3339(self.now), "unix_ns": _unix_ns(self.now)},
        }

    def encoded(self) -> bytes:
        """``json_text`` as the bytes that go on the wire (ASCII, so the same characters)."""
        return self.json_text.encode("ascii")


def _rfc3339(now: datetime) -> str:
    return now.isoformat().replace("+00:00", "Z")


def _unix_ns(now: datetime) -> int:
    return int(now.timestamp()) * 1_000_000_000 + now.microsecond * 1_000
