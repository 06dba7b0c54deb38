"""RequestTrail: what one request has learnt so far, turned into audit records.

Each stage adds what it found (target, identity, decision, upstream); the trail writes
the decision record (durable, awaited) and the completion (queued) from it, so the
endpoint never assembles audit rows by hand.
"""

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .audit.records import Completion, DecisionOutcome, DecisionRecord
from .audit.writer import AuditWriter
from .goproxy.requests import ModuleRequest, SumdbRequest
from .identity.base import ANONYMOUS, Identity
from .policy.decision import Decision


@dataclass
class RequestTrail:
    request_id: str
    path: str
    client_address: str
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    started: float = field(default_factory=time.perf_counter)
    target: ModuleRequest | SumdbRequest | None = None
    identity: Identity = ANONYMOUS
    decision: Decision | None = None
    resolved_version: str | None = None
    upstream: str | None = None
    recorded: bool = False

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
            path=self.path[:2048],
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
        )

    async def allow(self, writer: AuditWriter) -> None:
        """Make the allow decision durable; raises AuditError (then nothing is served)."""
        reasons = self.decision.reasons if self.decision else ()
        await writer.record(self._record("allow", reasons, None, None))
        self.recorded = True

    async def refuse(
        self, writer: AuditWriter, reasons: tuple[str, ...], error_code: str, status: int
    ) -> None:
        """Record a refusal; raises AuditError like ``allow``."""
        self.recorded = True
        await writer.record(self._record("deny", reasons, error_code, status))

    def complete(
        self,
        writer: AuditWriter,
        status: int,
        size: int,
        sha256_hex: str,
        error_code: str | None = None,
    ) -> None:
        writer.complete_later(
            Completion(
                request_id=self.request_id,
                status=status,
                bytes=size,
                sha256=sha256_hex,
                duration_ms=(time.perf_counter() - self.started) * 1000,
                completed_at=datetime.now(UTC),
                upstream=self.upstream,
                error_code=error_code,
            )
        )
