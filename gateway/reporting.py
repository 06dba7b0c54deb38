"""What a finished proxy request reports beside its audit completion: its metrics and its
one log line, both read from the trail once the answer has ended.

The labels are the bounded part (kind, decision, status); the log line carries what must
never be a label (request id, subject, module, version).
"""

from typing import Protocol

from .goproxy.requests import ModuleRequest, SumdbRequest
from .identity.base import Identity
from .logs import request_line
from .observability import Metrics
from .policy.decision import Decision


class FinishedRequest(Protocol):
    """The parts of a RequestTrail read here."""

    @property
    def request_id(self) -> str: ...
    @property
    def target(self) -> ModuleRequest | SumdbRequest | None: ...
    @property
    def identity(self) -> Identity: ...
    @property
    def decision(self) -> Decision | None: ...
    @property
    def resolved_version(self) -> str | None: ...
    @property
    def upstream(self) -> str | None: ...


def decision_label(decision: Decision | None) -> str:
    """The policy's last word: allow, deny, or none when the request was answered before
    the policy was asked (a malformed path, bad credentials)."""
    if decision is None:
        return "none"
    return "allow" if decision.allowed else "deny"


def report_request(
    trail: FinishedRequest,
    metrics: Metrics | None,
    *,
    status: int,
    size: int,
    duration_s: float,
    error_code: str | None,
) -> None:
    """Count ``trail``'s request and log its line; called once, when its answer ended."""
    target = trail.target
    kind = target.kind if target is not None else "invalid"
    decision = decision_label(trail.decision)
    if metrics is not None:
        metrics.observe_request(kind=kind, decision=decision, status=status, duration_s=duration_s)
    requested = target.version if target is not None else None
    request_line(
        request_id=trail.request_id,
        subject=trail.identity.subject,
        kind=kind,
        module=target.module if target is not None else None,
        version=trail.resolved_version or requested,
        decision=decision,
        status=status,
        error_code=error_code,
        upstream=trail.upstream,
        bytes_sent=size,
        duration_s=duration_s,
    )
