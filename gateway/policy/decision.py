"""The Decision value, and the one function that reads OPA's reply into it.

OPA answers ``{"result": {...}}``; an undefined rule answers ``{}`` (no ``result``), which
raises PolicyUndefinedError. Any other reply that is not exactly the documented shape raises
PolicyMalformedError. Either refuses the request (fail closed, never guess), and each has
its own code, so the audit trail tells a policy that is not loaded from one that is broken.
"""

from dataclasses import dataclass
from typing import Any

from ..errors import PolicyMalformedError, PolicyUndefinedError
from ..types import Route

MAX_REASONS = 8
MAX_REASON_CHARS = 300


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reasons: tuple[str, ...]
    route: Route
    revision: str


def decision_from_reply(reply: object) -> Decision:
    """Read OPA's reply to ``POST /v1/data/<decision path>``; raise PolicyError if unusable."""
    if not isinstance(reply, dict):
        raise PolicyMalformedError("policy engine answered something other than a JSON object")
    if "result" not in reply:
        raise PolicyUndefinedError("policy decision is undefined (is the modgate policy loaded?)")
    result: Any = reply["result"]
    if not isinstance(result, dict):
        raise PolicyMalformedError("policy decision is not an object")
    allow, reasons, route = result.get("allow"), result.get("reasons"), result.get("route")
    revision = result.get("revision", "unknown")
    if not isinstance(allow, bool):
        raise PolicyMalformedError("policy decision has no boolean 'allow'")
    if not isinstance(reasons, list) or not all(isinstance(r, str) for r in reasons):
        raise PolicyMalformedError("policy decision has no list of string 'reasons'")
    if route not in ("public", "private"):
        raise PolicyMalformedError(f"policy decision has a bad 'route': {route!r}")
    if not isinstance(revision, str):
        raise PolicyMalformedError("policy decision has a non-string 'revision'")
    if not allow and not reasons:
        reasons = ["denied by policy (no reason given)"]
    clean = tuple(_one_line(r) for r in reasons[:MAX_REASONS])
    return Decision(allowed=allow, reasons=clean, route=route, revision=revision[:128])


def _one_line(reason: str) -> str:
    # The go command stops reading an error body at the first blank line (web/api.go).
    flat = " ".join(reason.split())
    return flat[:MAX_REASON_CHARS]
