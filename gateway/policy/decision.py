"""The Decision value, and the one function that reads OPA's reply into it.

OPA answers ``{"result": {...}}``; an undefined rule answers ``{}`` (no ``result``), which
raises PolicyUndefinedError. Any other reply that is not exactly the documented shape raises
PolicyMalformedError. The shape is decision contract v2 (docs/policy.md): reasons are objects
``{"code", "message", "rule"}``, plain-string reasons are refused. Either refuses the request
(fail closed, never guess), and each has its own code, so the audit trail tells a policy
that is not loaded from one that is broken.
"""

import re
from dataclasses import dataclass
from typing import Any

from ..errors import PolicyMalformedError, PolicyUndefinedError
from ..types import Route

MAX_REASONS = 8
MAX_REASON_CHARS = 300
CODE = re.compile(r"[a-z][a-z0-9_]{0,63}")
DECISION_KEYS = frozenset({"allow", "reasons", "route", "revision", "obligations"})
REASON_KEYS = frozenset({"code", "message", "rule", "log_only"})
OBLIGATION_TYPES: dict[str, type] = {"log_only": bool, "cache_ttl_s": int}


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    message: str
    rule: str
    log_only: bool = False


NO_REASON = Reason("policy_default", "denied by policy (no reason given)", "modgate.reasons")


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reasons: tuple[Reason, ...]
    route: Route
    revision: str
    log_only: bool = False
    cache_ttl_s: int | None = None

    @property
    def messages(self) -> tuple[str, ...]:
        return tuple(r.message for r in self.reasons)


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
    unknown = set(result) - DECISION_KEYS
    if unknown:
        raise PolicyMalformedError(f"policy decision has unknown keys: {sorted(unknown)}")
    if not isinstance(reasons, list):
        raise PolicyMalformedError("policy decision has no list 'reasons'")
    if route not in ("public", "private"):
        raise PolicyMalformedError(f"policy decision has a bad 'route': {route!r}")
    if not isinstance(revision, str):
        raise PolicyMalformedError("policy decision has a non-string 'revision'")
    log_only, ttl = _obligations(result.get("obligations", {}))
    clean = tuple(_reason(r) for r in reasons[:MAX_REASONS])
    if not allow and not clean:
        clean = (NO_REASON,)
    return Decision(
        allowed=allow,
        reasons=clean,
        route=route,
        revision=revision[:128],
        log_only=log_only,
        cache_ttl_s=ttl,
    )


def _reason(reason: object) -> Reason:
    if not isinstance(reason, dict):
        raise PolicyMalformedError("policy decision has a reason that is not an object")
    unknown = set(reason) - REASON_KEYS
    if unknown:
        raise PolicyMalformedError(
            f"policy decision has a reason with unknown keys: {sorted(unknown)}"
        )
    code, message = reason.get("code"), reason.get("message")
    rule, log_only = reason.get("rule", ""), reason.get("log_only", False)
    if not isinstance(code, str) or not CODE.fullmatch(code):
        raise PolicyMalformedError(f"policy decision has a reason with a bad 'code': {code!r:.80}")
    if not isinstance(message, str):
        raise PolicyMalformedError("policy decision has a reason without a string 'message'")
    if not isinstance(rule, str) or not isinstance(log_only, bool):
        raise PolicyMalformedError("policy decision has a reason with a bad 'rule' or 'log_only'")
    return Reason(code, _one_line(message), _one_line(rule)[:128], log_only)


def _obligations(obligations: object) -> tuple[bool, int | None]:
    if not isinstance(obligations, dict):
        raise PolicyMalformedError("policy decision has 'obligations' that are not an object")
    for key, value in obligations.items():
        kind = OBLIGATION_TYPES.get(key)
        if kind is None:
            raise PolicyMalformedError(f"policy decision has an unknown obligation: {key!r:.80}")
        if type(value) is not kind or (isinstance(value, int) and value < 0):
            raise PolicyMalformedError(f"policy decision has a bad obligation {key}: {value!r:.80}")
    log_only: bool = obligations.get("log_only", False)
    ttl: int | None = obligations.get("cache_ttl_s")
    return log_only, ttl


def _one_line(reason: str) -> str:
    # The go command stops reading an error body at the first blank line (web/api.go).
    flat = " ".join(reason.split())
    return flat[:MAX_REASON_CHARS]
