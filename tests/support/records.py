"""Audit records as the gateway writes them, for the writer's tests and its benchmark:
one allowed ``.zip`` decision and its completion, any field changed by keyword."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import UTC, datetime

from gateway.audit.records import Completion, DecisionRecord

INPUT = {"shape": 1, "request": {"kind": "zip", "module": "example.com/hello"}}
"""The policy input stored by default: a small JSON document (the real one is built by
``gateway.policy.input.PolicyInput``; pass its ``json_text`` to store that instead)."""

ZIP_BYTES = b"zip bytes"


def decision_record(request_id: str, **changes: object) -> DecisionRecord:
    """An allowed decision for example.com/hello@v1.0.0.zip by alice, received now."""
    record = DecisionRecord(
        request_id=request_id,
        received_at=datetime.now(UTC),
        subject="alice",
        groups=("developers",),
        auth_method="token",
        client_address="127.0.0.1",
        kind="zip",
        path="/example.com/hello/@v/v1.0.0.zip",
        module="example.com/hello",
        version="v1.0.0",
        requested_version=None,
        decision="allow",
        reasons=(),
        error_code=None,
        policy_revision="r1",
        route="public",
        upstream=None,
        policy_input=json.dumps(INPUT, separators=(",", ":")),
        input_shape=1,
    )
    return dataclasses.replace(record, **changes)  # type: ignore[arg-type]


def completion_record(request_id: str, **changes: object) -> Completion:
    """Its completion: 200, the nine bytes of ``ZIP_BYTES`` served in 1.5 ms, now."""
    digest = hashlib.sha256(ZIP_BYTES).hexdigest()
    done = Completion(
        request_id, 200, len(ZIP_BYTES), digest, 1.5, datetime.now(UTC), upstream="http://u"
    )
    return dataclasses.replace(done, **changes)  # type: ignore[arg-type]
