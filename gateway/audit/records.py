"""The parts of an audit record, as plain values (no SQL here).

Each value becomes one append-only event in ``audit_events`` (``models.py``): a
DecisionRecord the ``decision`` event, a Resolution the ``resolution`` event, a Completion
the ``completion`` event. ``AuditEvent`` is one of them numbered by the writer."""

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

DecisionOutcome = Literal["allow", "deny"]


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """What was asked, by whom, and what was decided: durable before a byte is served."""

    request_id: str
    received_at: datetime
    subject: str | None
    groups: tuple[str, ...]
    auth_method: str
    client_address: str
    kind: str
    path: str
    module: str | None
    version: str | None
    requested_version: str | None
    decision: DecisionOutcome
    reasons: tuple[str, ...]
    error_code: str | None
    policy_revision: str | None
    route: str | None
    upstream: str | None
    status: int | None = None
    """Set at once for refusals, whose answer is known when the decision is recorded."""
    policy_input: str | None = None
    """The JSON text of the input document sent to OPA for this decision; None when the
    policy was not asked (a refusal before the decision stage)."""
    input_shape: int | None = None
    """The ``shape`` version of ``policy_input``."""


@dataclass(frozen=True, slots=True)
class Resolution:
    """The second decision of a revision query or ``@latest``: made once the upstream named
    the canonical version, durable before that version's answer is served.

    The first decision (may this query be resolved at all?) is recorded before the upstream
    is asked, so the upstream never sees a request the audit trail does not hold."""

    request_id: str
    version: str
    requested_version: str | None
    decision: DecisionOutcome
    reasons: tuple[str, ...]
    policy_revision: str | None
    upstream: str | None
    error_code: str | None = None
    status: int | None = None
    policy_input: str | None = None
    """The JSON text of the input document of the second decision (``resolved`` true)."""
    input_shape: int | None = None


@dataclass(frozen=True, slots=True)
class Completion:
    """How the answer ended: filled in after the last byte (or the failure)."""

    request_id: str
    status: int
    bytes: int
    sha256: str
    duration_ms: float
    completed_at: datetime
    upstream: str | None = None
    error_code: str | None = None
    reasons: tuple[str, ...] | None = None
    """Why an answer that was allowed ended in a refusal (an upstream failure, say); None
    keeps the decision's reasons."""


AuditItem = DecisionRecord | Resolution | Completion
"""Anything the audit writer takes."""

EventKind = Literal["decision", "resolution", "completion"]


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """An item as the writer hands it to a sink: numbered ``seq`` in the order
    ``writer_id`` writes its events (see ``writer.py``)."""

    writer_id: str
    seq: int
    item: AuditItem

    @property
    def kind(self) -> EventKind:
        if isinstance(self.item, DecisionRecord):
            return "decision"
        if isinstance(self.item, Resolution):
            return "resolution"
        return "completion"
