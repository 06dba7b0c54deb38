"""The audit schema, owned by SQLAlchemy and migrated by Alembic (``migrations/``).

``audit_events`` is append-only: every audit write is an INSERT, nothing updates or
deletes a row. One request leaves up to three events, all keyed by its ``request_id``:

- ``decision``: what was asked, by whom, what the policy decided, with the exact policy
  input document sent to OPA. Inserted and committed before a byte is served.
- ``resolution``: for a revision query or ``@latest``, the second decision, about the
  canonical version the upstream named; committed before that version's answer is served.
- ``completion``: how the answer ended (status, bytes, sha256, duration, error), written
  once it is sent. A request without one was decided but never finished.

Why one table with an ``event`` column, rather than a table per event: every event of a
writer shares one sequence (``writer_id``, ``seq``), which is the primary key here, and
the hash chain of issue 12 runs over that sequence; in one table the key is enforced by
the database and the chain is verified by reading one index in order. The writer also
writes a whole group commit with one COPY. The price is columns that are NULL for the
kinds that do not use them; the CHECK constraints say which kind needs which.

``prev_hash`` and ``record_hash`` are reserved, always NULL for now: issue 12 fills them
with a hash chain over each writer's events in ``seq`` order.

``audit_records`` is a VIEW over the events with the one-row-per-request columns of
schema 0001 (a resolution's version, decision and reasons over the first decision's, the
completion's columns NULL while not completed), so auditors' queries keep working.
``audit_records_view`` below describes it for SQLAlchemy reads; it lives in its own
MetaData so nothing ever creates it as a table.

``api_tokens`` holds only salted hashes of API tokens.
"""

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
)
from sqlalchemy.dialects.postgresql import JSONB

EVENT_KINDS = ("decision", "resolution", "completion")

metadata = MetaData()


def json_type() -> JSON:
    """JSONB on PostgreSQL, JSON (text) on SQLite. Python None is SQL NULL, not JSON null."""
    return JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


def _required_for(event: str, *columns: str) -> CheckConstraint:
    filled = " AND ".join(f"{column} IS NOT NULL" for column in columns)
    return CheckConstraint(
        f"event <> '{event}' OR ({filled})", name=f"ck_audit_events_{event}_filled"
    )


audit_events = Table(
    "audit_events",
    metadata,
    Column("writer_id", String(32), primary_key=True),  # random, one per AuditWriter run
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("event", String(16), nullable=False),  # decision | resolution | completion
    Column("request_id", String(32), nullable=False),
    # decision
    Column("received_at", DateTime(timezone=True)),
    Column("subject", String(128)),
    Column("groups", json_type()),
    Column("auth_method", String(16)),
    Column("client_address", String(64)),
    Column("kind", String(16)),
    Column("path", String(2048)),
    Column("module", String(1024)),
    # decision and resolution
    Column("version", String(256)),
    Column("requested_version", String(256)),
    Column("decision", String(8)),  # allow | deny
    Column("policy_revision", String(128)),
    Column("route", String(8)),
    Column("policy_input", json_type()),
    Column("input_shape", Integer),
    # any event
    Column("reasons", json_type()),
    Column("error_code", String(64)),
    Column("upstream", String(512)),
    Column("status", Integer),
    # completion
    Column("bytes", BigInteger),
    Column("sha256", String(64)),
    Column("duration_ms", Float),
    Column("completed_at", DateTime(timezone=True)),
    # reserved for issue 12's hash chain
    Column("prev_hash", String(64)),
    Column("record_hash", String(64)),
    CheckConstraint(
        "event IN ('decision', 'resolution', 'completion')", name="ck_audit_events_event"
    ),
    CheckConstraint("decision IN ('allow', 'deny')", name="ck_audit_events_decision"),
    _required_for(
        "decision",
        "received_at",
        "groups",
        "auth_method",
        "client_address",
        "kind",
        "path",
        "decision",
        "reasons",
    ),
    _required_for("resolution", "version", "decision", "reasons"),
    _required_for("completion", "status", "bytes", "sha256", "duration_ms", "completed_at"),
    # One event of each kind per request: a replayed request id is refused, and the view
    # joins a request's events through this index.
    Index("uq_audit_events_request_id_event", "request_id", "event", unique=True),
    Index("ix_audit_events_received_at", "received_at"),
    Index("ix_audit_events_module_version", "module", "version"),
    Index("ix_audit_events_subject", "subject"),
)

views = MetaData()

audit_records_view = Table(
    "audit_records",
    views,
    Column("request_id", String(32), primary_key=True),
    Column("received_at", DateTime(timezone=True)),
    Column("subject", String(128)),
    Column("groups", json_type()),
    Column("auth_method", String(16)),
    Column("client_address", String(64)),
    Column("kind", String(16)),
    Column("path", String(2048)),
    Column("module", String(1024)),
    Column("version", String(256)),
    Column("requested_version", String(256)),
    Column("decision", String(8)),
    Column("reasons", json_type()),
    Column("error_code", String(64)),
    Column("policy_revision", String(128)),
    Column("route", String(8)),
    Column("upstream", String(512)),
    Column("status", Integer),
    Column("bytes", BigInteger),
    Column("sha256", String(64)),
    Column("duration_ms", Float),
    Column("completed_at", DateTime(timezone=True)),
)
"""The ``audit_records`` view (created by migration 0002), for reading only."""

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("token_id", String(16), primary_key=True),
    Column("subject", String(128), nullable=False),
    Column("groups", json_type(), nullable=False),
    Column("salt", String(32), nullable=False),
    Column("digest", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked", Boolean, nullable=False, default=False),
    Column("revoked_at", DateTime(timezone=True)),
    Column("expires_at", DateTime(timezone=True)),
)
