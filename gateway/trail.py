"""RequestTrail: what one request has learnt so far, turned into audit records.

Each stage adds what it found (target, identity, decision, upstream); the trail writes
the decision record (durable, awaited) and the completion (queued) from it, so the
endpoint never assembles audit rows by hand. It is bound to the audit writer once, when
the request arrives:

    trail = RequestTrail(writer, request_id, path, client_address)
    await trail.allow()                      # durable before a byte is served
    response = forward.respond(reply, request_id, on_end=trail.delivered)

A revision query or ``@latest`` is decided twice: once as asked (recorded before the
upstream is contacted) and once more for the canonical version the upstream resolved it
to (recorded as a Resolution, a second decision event of the same request, before that
version's answer is served).
"""

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .audit.records import Completion, DecisionOutcome, DecisionRecord, Resolution
from .audit.writer import AuditWriter
from .goproxy.requests import ModuleRequest, SumdbRequest
from .http.delivery import Delivery
from .identity.base import ANONYMOUS, Identity
from .observability import Metrics
from .policy.decision import Decision
from .policy.input import PolicyInput
from .reporting import report_request


@dataclass
class RequestTrail:
    writer: AuditWriter = field(repr=False)
    request_id: str
    path: str
    client_address: str
    metrics: Metrics | None = field(default=None, repr=False)
    """Where the request is counted once complete (``reporting.py``)."""
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    started: float = field(default_factory=time.perf_counter)
    target: ModuleRequest | SumdbRequest | None = None
    identity: Identity = ANONYMOUS
    decision: Decision | None = None
    decided_input: str | None = None
    """The exact JSON text of the policy input the decision was asked with (what OPA got)."""
    decided_shape: int | None = None
    """That input's shape version (``policy/input.py``)."""
    resolved_version: str | None = None
    upstream: str | None = None
    recorded: bool = False
    """The first decision is in the audit trail (or was attempted)."""
    resolution_recorded: bool = False
    served_notes: tuple[str, ...] | None = None
    """What the answer served left out of the upstream's (versions hidden from a list):
    the completion's reasons."""

    def _record(
        self,
        outcome: DecisionOutcome,
        reasons: tuple[str, ...],
        error_code: str | None,
        status: int | None,
    ) -> DecisionRecord:
        target = self.target
        requested = target.version if target is not None else None
        version = self.resolved_version or requested
        return DecisionRecord(
            request_id=self.request_id,
            received_at=self.received_at,
            subject=self.identity.subject,
            groups=self.identity.groups,
            auth_method=self.identity.method,
            client_address=self.client_address,
            kind=target.kind if target is not None else "invalid",
            path=self.path,
            module=target.module if target is not None else None,
            version=version,
            requested_version=requested if requested != version else None,
            decision=outcome,
            reasons=reasons,
            error_code=error_code,
            policy_revision=self.decision.revision if self.decision else None,
            route=self.decision.route if self.decision else None,
            upstream=self.upstream,
            status=status,
            policy_input=self.decided_input,
            input_shape=self.decided_shape,
        )

    def _resolution(
        self,
        outcome: DecisionOutcome,
        reasons: tuple[str, ...],
        error_code: str | None,
        status: int | None,
    ) -> Resolution:
        if self.resolved_version is None:
            raise ValueError("a resolution needs the resolved version")
        requested = self.target.version if self.target is not None else None
        return Resolution(
            request_id=self.request_id,
            version=self.resolved_version,
            requested_version=requested if requested != self.resolved_version else None,
            decision=outcome,
            reasons=reasons,
            policy_revision=self.decision.revision if self.decision else None,
            upstream=self.upstream,
            error_code=error_code,
            status=status,
            policy_input=self.decided_input,
            input_shape=self.decided_shape,
        )

    @property
    def _resolution_pending(self) -> bool:
        return self.recorded and self.resolved_version is not None and not self.resolution_recorded

    @property
    def allowed(self) -> bool:
        return self.decision is not None and self.decision.allowed

    def asking(self, policy_input: PolicyInput) -> None:
        """Note the input the policy is about to be asked with, as the very text OPA gets
        (also when no decision comes back: the refusal's record shows what was asked)."""
        self.decided_input = policy_input.json_text
        self.decided_shape = policy_input.shape

    async def allow(self) -> None:
        """Make the current allow decision durable: the first decision, or the resolution
        of a query once resolved. Raises AuditError (then nothing is served)."""
        reasons = self.decision.messages if self.decision else ()
        if not self.recorded:
            await self.writer.record(self._record("allow", reasons, None, None))
            self.recorded = True
        elif self._resolution_pending:
            self.resolution_recorded = True
            await self.writer.resolve(self._resolution("allow", reasons, None, None))

    async def refuse(self, reasons: tuple[str, ...], error_code: str, status: int) -> None:
        """Record a refusal (of the request, or of its resolved version); raises AuditError
        like ``allow``. Nothing to record when the allow already is: the completion says how
        the answer ended."""
        if not self.recorded:
            self.recorded = True
            await self.writer.record(self._record("deny", reasons, error_code, status))
        elif self._resolution_pending:
            self.resolution_recorded = True
            await self.writer.resolve(self._resolution("deny", reasons, error_code, status))

    def delivered(self, delivery: Delivery) -> None:
        """Complete the record with what an answer from upstream delivered (``on_end``)."""
        self.complete(
            delivery.status, delivery.bytes, delivery.sha256, delivery.error_code, self.served_notes
        )

    def complete(
        self,
        status: int,
        size: int,
        sha256_hex: str,
        error_code: str | None = None,
        reasons: tuple[str, ...] | None = None,
    ) -> None:
        duration_s = time.perf_counter() - self.started
        report_request(
            self,
            self.metrics,
            status=status,
            size=size,
            duration_s=duration_s,
            error_code=error_code,
        )
        self.writer.complete_later(
            Completion(
                request_id=self.request_id,
                status=status,
                bytes=size,
                sha256=sha256_hex,
                duration_ms=duration_s * 1000,
                completed_at=datetime.now(UTC),
                upstream=self.upstream,
                error_code=error_code,
                reasons=reasons,
            )
        )
