"""append-only audit events, audit_records as a view

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 08:00:00

Upgrade: creates ``audit_events`` (one row per decision, resolution or completion; see
``gateway/audit/models.py``), moves every row of the 0001 table ``audit_records`` into it
(a decision event, and a completion event when the row was completed, under the writer id
``migrated-0001``, numbered in the order the requests were received), checks that every
row arrived, drops the table and creates the view ``audit_records`` with the same
columns in its place. JSON held in text columns (``groups``, ``reasons``, and
``api_tokens.groups``) becomes JSONB on PostgreSQL, JSON on SQLite.

A 0001 row holds a resolution merged into its decision, so a migrated decision event
carries the row's final version, decision and reasons; the view shows each migrated row
exactly as the table did. Migrated events have no policy input (0001 did not keep it).

Downgrade: rebuilds the 0001 table from the view (every request keeps its row as the view
shows it) and drops the events. What 0001 cannot hold is lost and said so in the log: the
stored policy inputs, the event numbering, the split of a resolution from its decision,
and completions of requests without a decision event.

The SQL is written out here, not taken from the models: a migration must keep meaning
what it meant when the models change.
"""

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")

MIGRATED_WRITER = "migrated-0001"

# The 0001 columns, in their order: the view's columns, and the downgraded table's.
RECORD_COLUMNS = (
    "request_id", "received_at", "subject", "groups", "auth_method", "client_address",
    "kind", "path", "module", "version", "requested_version", "decision", "reasons",
    "error_code", "policy_revision", "route", "upstream", "status", "bytes", "sha256",
    "duration_ms", "completed_at",
)  # fmt: skip
DECISION_COLUMNS = RECORD_COLUMNS[:18]  # request_id .. status
COMPLETION_COLUMNS = (
    "request_id", "reasons", "error_code", "upstream", "status", "bytes", "sha256",
    "duration_ms", "completed_at",
)  # fmt: skip

VIEW_SQL = """
CREATE VIEW audit_records AS
SELECT
    d.request_id,
    d.received_at,
    d.subject,
    d.groups,
    d.auth_method,
    d.client_address,
    d.kind,
    d.path,
    d.module,
    CASE WHEN r.request_id IS NULL THEN d.version ELSE r.version END AS version,
    CASE WHEN r.request_id IS NULL THEN d.requested_version
         ELSE r.requested_version END AS requested_version,
    COALESCE(r.decision, d.decision) AS decision,
    COALESCE(c.reasons, r.reasons, d.reasons) AS reasons,
    COALESCE(c.error_code, r.error_code, d.error_code) AS error_code,
    CASE WHEN r.request_id IS NULL THEN d.policy_revision
         ELSE r.policy_revision END AS policy_revision,
    d.route,
    COALESCE(c.upstream, r.upstream, d.upstream) AS upstream,
    COALESCE(c.status, r.status, d.status) AS status,
    c.bytes,
    c.sha256,
    c.duration_ms,
    c.completed_at
FROM audit_events AS d
LEFT JOIN audit_events AS r ON r.request_id = d.request_id AND r.event = 'resolution'
LEFT JOIN audit_events AS c ON c.request_id = d.request_id AND c.event = 'completion'
WHERE d.event = 'decision'
"""


def _json() -> sa.types.TypeEngine[object]:
    return sa.JSON(none_as_null=True).with_variant(
        postgresql.JSONB(none_as_null=True), "postgresql"
    )


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _text_to_json(column: str) -> str:
    """``column`` (JSON text) as the JSON column type of the dialect."""
    return f"CAST({column} AS JSONB)" if _postgres() else column


def _json_to_text(column: str) -> str:
    return f"CAST({column} AS TEXT)" if _postgres() else column


def _required_for(event: str, *columns: str) -> sa.CheckConstraint:
    filled = " AND ".join(f"{column} IS NOT NULL" for column in columns)
    return sa.CheckConstraint(
        f"event <> '{event}' OR ({filled})", name=f"ck_audit_events_{event}_filled"
    )


def _create_events() -> None:
    op.create_table(
        "audit_events",
        sa.Column("writer_id", sa.String(32), primary_key=True),
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("request_id", sa.String(32), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True)),
        sa.Column("subject", sa.String(128)),
        sa.Column("groups", _json()),
        sa.Column("auth_method", sa.String(16)),
        sa.Column("client_address", sa.String(64)),
        sa.Column("kind", sa.String(16)),
        sa.Column("path", sa.String(2048)),
        sa.Column("module", sa.String(1024)),
        sa.Column("version", sa.String(256)),
        sa.Column("requested_version", sa.String(256)),
        sa.Column("decision", sa.String(8)),
        sa.Column("policy_revision", sa.String(128)),
        sa.Column("route", sa.String(8)),
        sa.Column("policy_input", _json()),
        sa.Column("input_shape", sa.Integer),
        sa.Column("reasons", _json()),
        sa.Column("error_code", sa.String(64)),
        sa.Column("upstream", sa.String(512)),
        sa.Column("status", sa.Integer),
        sa.Column("bytes", sa.BigInteger),
        sa.Column("sha256", sa.String(64)),
        sa.Column("duration_ms", sa.Float),
        sa.Column("completed_at", sa.DateTime(timezone=True)),
        sa.Column("prev_hash", sa.String(64)),
        sa.Column("record_hash", sa.String(64)),
        sa.CheckConstraint(
            "event IN ('decision', 'resolution', 'completion')", name="ck_audit_events_event"
        ),
        sa.CheckConstraint("decision IN ('allow', 'deny')", name="ck_audit_events_decision"),
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
    )
    op.create_index(
        "uq_audit_events_request_id_event", "audit_events", ["request_id", "event"], unique=True
    )
    op.create_index("ix_audit_events_received_at", "audit_events", ["received_at"])
    op.create_index("ix_audit_events_module_version", "audit_events", ["module", "version"])
    op.create_index("ix_audit_events_subject", "audit_events", ["subject"])


def _select(columns: Sequence[str], convert: dict[str, str]) -> str:
    return ", ".join(convert.get(column, column) for column in columns)


def _move_records_into_events() -> None:
    numbered = (
        "SELECT *, ROW_NUMBER() OVER (ORDER BY received_at, request_id) AS n FROM audit_records"
    )
    as_json = {name: _text_to_json(name) for name in ("groups", "reasons")}
    op.execute(
        f"INSERT INTO audit_events (writer_id, seq, event, {', '.join(DECISION_COLUMNS)}) "
        f"SELECT '{MIGRATED_WRITER}', 2 * n - 1, 'decision', {_select(DECISION_COLUMNS, as_json)} "
        f"FROM ({numbered}) AS old"
    )
    op.execute(
        f"INSERT INTO audit_events (writer_id, seq, event, {', '.join(COMPLETION_COLUMNS)}) "
        f"SELECT '{MIGRATED_WRITER}', 2 * n, 'completion', "
        f"{_select(COMPLETION_COLUMNS, as_json)} "
        f"FROM ({numbered}) AS old WHERE completed_at IS NOT NULL"
    )
    bind = op.get_bind()
    old = bind.execute(sa.text("SELECT count(*) FROM audit_records")).scalar_one()
    moved = bind.execute(
        sa.text("SELECT count(*) FROM audit_events WHERE event = 'decision' AND writer_id = :w"),
        {"w": MIGRATED_WRITER},
    ).scalar_one()
    if moved != old:  # never drop the table unless every row is safe in the events
        raise RuntimeError(f"moved {moved} of {old} audit records; audit_records kept")
    if old:
        log.info("moved %d audit records into audit_events (writer %s)", old, MIGRATED_WRITER)


def _drop_records_table() -> None:
    op.drop_index("ix_audit_records_subject", "audit_records")
    op.drop_index("ix_audit_records_module_version", "audit_records")
    op.drop_index("ix_audit_records_received_at", "audit_records")
    op.drop_table("audit_records")


def _tokens_groups(new_type: sa.types.TypeEngine[object], using: str) -> None:
    if _postgres():
        op.alter_column(
            "api_tokens", "groups", type_=new_type, postgresql_using=using, nullable=False
        )
        return
    with op.batch_alter_table("api_tokens") as batch:  # SQLite rebuilds the table
        batch.alter_column("groups", type_=new_type, existing_nullable=False)


def upgrade() -> None:
    _create_events()
    _move_records_into_events()
    _drop_records_table()
    op.execute(VIEW_SQL)
    _tokens_groups(_json(), "groups::jsonb")


def downgrade() -> None:
    bind = op.get_bind()
    lost = bind.execute(
        sa.text(
            "SELECT count(*) FROM audit_events AS e WHERE e.policy_input IS NOT NULL "
            "OR e.event = 'resolution' OR (e.event = 'completion' AND NOT EXISTS "
            "(SELECT 1 FROM audit_events AS d WHERE d.request_id = e.request_id "
            "AND d.event = 'decision'))"
        )
    ).scalar_one()
    if lost:
        log.warning(
            "downgrade to 0001 keeps one row per request but drops what 0001 cannot hold "
            "(policy inputs, resolutions as events, completions without a decision): "
            "%d events affected",
            lost,
        )
    _tokens_groups(sa.Text(), "groups::text")
    op.create_table(
        "audit_records_0001",
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
    as_text = {name: _json_to_text(name) for name in ("groups", "reasons")}
    op.execute(
        f"INSERT INTO audit_records_0001 ({', '.join(RECORD_COLUMNS)}) "
        f"SELECT {_select(RECORD_COLUMNS, as_text)} FROM audit_records"
    )
    op.execute("DROP VIEW audit_records")
    op.rename_table("audit_records_0001", "audit_records")
    if _postgres():  # the primary key's name as 0001 made it
        op.execute(
            "ALTER TABLE audit_records RENAME CONSTRAINT audit_records_0001_pkey "
            "TO audit_records_pkey"
        )
    op.create_index("ix_audit_records_received_at", "audit_records", ["received_at"])
    op.create_index("ix_audit_records_module_version", "audit_records", ["module", "version"])
    op.create_index("ix_audit_records_subject", "audit_records", ["subject"])
    op.drop_table("audit_events")
