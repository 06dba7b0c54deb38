"""audit records and api tokens

Revision ID: 0001
Revises:
Create Date: 2026-11-25 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_records",
        sa.Column("request_id", sa.String(32), primary_key=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("subject", sa.String(128)),
        sa.Column("groups", sa.Text, nullable=False),
        sa.Column("auth_method", sa.String(16), nullable=False),
        sa.Column("client_address", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("path", sa.String(2048), nullable=False),
        sa.Column("module", sa.String(1024)),
        sa.Column("version", sa.String(256)),
        sa.Column("requested_version", sa.String(256)),
        sa.Column("decision", sa.String(8), nullable=False),
        sa.Column("reasons", sa.Text, nullable=False),
        sa.Column("error_code", sa.String(64)),
        sa.Column("policy_revision", sa.String(128)),
        sa.Column("route", sa.String(8)),
        sa.Column("upstream", sa.String(512)),
        sa.Column("status", sa.Integer),
        sa.Column("bytes", sa.BigInteger),
        sa.Column("sha256", sa.String(64)),
        sa.Column("duration_ms", sa.Float),
        sa.Column("completed_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_audit_records_received_at", "audit_records", ["received_at"])
    op.create_index("ix_audit_records_module_version", "audit_records", ["module", "version"])
    op.create_index("ix_audit_records_subject", "audit_records", ["subject"])
    op.create_table(
        "api_tokens",
        sa.Column("token_id", sa.String(16), primary_key=True),
        sa.Column("subject", sa.String(128), nullable=False),
        sa.Column("groups", sa.Text, nullable=False),
        sa.Column("salt", sa.String(32), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked", sa.Boolean, nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
    )


def downgrade() -> None:
    op.drop_table("api_tokens")
    op.drop_index("ix_audit_records_subject", "audit_records")
    op.drop_index("ix_audit_records_module_version", "audit_records")
    op.drop_index("ix_audit_records_received_at", "audit_records")
    op.drop_table("audit_records")
