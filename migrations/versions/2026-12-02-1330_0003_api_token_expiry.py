"""api_tokens.expires_at: API tokens that expire

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 13:30:00

Upgrade: adds the nullable ``api_tokens.expires_at`` (timestamp with time zone). Every
existing token keeps working: NULL means it does not expire.

Downgrade: drops the column; tokens made with an expiry then never expire (said so in the
log when there were any).
"""

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")


def upgrade() -> None:
    op.add_column("api_tokens", sa.Column("expires_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    expiring = (
        op.get_bind()
        .execute(sa.text("SELECT count(*) FROM api_tokens WHERE expires_at IS NOT NULL"))
        .scalar_one()
    )
    if expiring:
        log.warning("downgrade to 0002: %d API token(s) lose their expiry", expiring)
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("expires_at")
