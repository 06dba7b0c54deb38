"""The audit schema, owned by SQLAlchemy and migrated by Alembic (``migrations/``).

``audit_records`` holds one row per request, allowed or denied. The decision half is
inserted (and committed) before anything is served; the completion half (status, bytes,
sha256, duration) is filled in once the answer is sent. A row whose ``completed_at`` is
NULL was decided but never finished (client gone, gateway killed): auditors see that.

``api_tokens`` holds only salted hashes of API tokens.
"""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

audit_records = Table(
    "audit_records",
    metadata,
    Column("request_id", String(32), primary_key=True),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("subject", String(128)),
    Column("groups", Text, nullable=False),  # JSON array
    Column("auth_method", String(16), nullable=False),
    Column("client_address", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("path", String(2048), nullable=False),
    Column("module", String(1024)),
    Column("version", String(256)),
    Column("requested_version", String(256)),
    Column("decision", String(8), nullable=False),  # allow | deny
    Column("reasons", Text, nullable=False),  # JSON array
    Column("error_code", String(64)),
    Column("policy_revision", String(128)),
    Column("route", String(8)),
    Column("upstream", String(512)),
    Column("status", Integer),
    Column("bytes", BigInteger),
    Column("sha256", String(64)),
    Column("duration_ms", Float),
    Column("completed_at", DateTime(timezone=True)),
    Index("ix_audit_records_received_at", "received_at"),
    Index("ix_audit_records_module_version", "module", "version"),
    Index("ix_audit_records_subject", "subject"),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("token_id", String(16), primary_key=True),
    Column("subject", String(128), nullable=False),
    Column("groups", Text, nullable=False),  # JSON array
    Column("salt", String(32), nullable=False),
    Column("digest", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked", Boolean, nullable=False, default=False),
    Column("revoked_at", DateTime(timezone=True)),
)
