"""initial schema: policy versions, approvals, publications, audit chain, outbox, human queue, safe mode

Revision ID: r0001
Revises:
Create Date: 2026-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

GENESIS = "sha256:" + "0" * 64
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "policy_versions",
        sa.Column("version", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.String(80), nullable=False),
        sa.Column("label", sa.String(200)),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "approvals",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("approver", sa.String(200), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("comment", sa.Text()),
        sa.ForeignKeyConstraint(
            ["version"], ["policy_versions.version"], name="fk_approvals_version_policy_versions"
        ),
    )
    op.create_index("ix_approvals_version", "approvals", ["version"])
    op.create_table(
        "publications",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("scope_kind", sa.String(16), nullable=False),
        sa.Column("tenants", sa.Text()),
        sa.Column("percent", sa.Integer()),
        sa.Column("excluded", sa.Text()),
        sa.Column("published_by", sa.String(200), nullable=False),
        sa.Column("published_at", TS, nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("ended_at", TS),
        sa.Column("ended_by", sa.String(200)),
        sa.ForeignKeyConstraint(
            ["version"], ["policy_versions.version"], name="fk_publications_version_policy_versions"
        ),
    )
    op.create_index("ix_publications_version", "publications", ["version"])
    op.create_index("ix_publications_active", "publications", ["active"])
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("ts", TS, nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("policy", sa.String(200)),
        sa.Column("scope", sa.String(400)),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(80), nullable=False),
        sa.Column("hash", sa.String(80), nullable=False),
    )
    op.create_index("ix_audit_log_ts", "audit_log", ["ts"])
    op.create_index("ix_audit_log_kind", "audit_log", ["kind"])
    op.create_index("ix_audit_log_policy", "audit_log", ["policy"])
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(80), nullable=False),
    )
    op.bulk_insert(head, [{"id": 1, "seq": 0, "hash": GENESIS}])
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("notifier", sa.String(200), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("delivered_at", TS),
        sa.Column("last_error", sa.Text()),
        sa.Column("audit_seq", sa.Integer()),
    )
    op.create_index("ix_outbox_pending", "outbox", ["delivered_at", "next_attempt_at"])
    op.create_table(
        "human_queue",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("queue", sa.String(200), nullable=False),
        sa.Column("policy", sa.String(200)),
        sa.Column("trace_id", sa.String(100)),
        sa.Column("request", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("resolved_at", TS),
        sa.Column("resolved_by", sa.String(200)),
        sa.Column("resolution", sa.Text()),
    )
    op.create_index("ix_human_queue_queue", "human_queue", ["queue"])
    op.create_index("ix_human_queue_status", "human_queue", ["status"])
    op.create_table(
        "safe_mode",
        sa.Column("scope", sa.String(300), primary_key=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("set_by", sa.String(200), nullable=False),
        sa.Column("at", TS, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "safe_mode",
        "human_queue",
        "outbox",
        "audit_head",
        "audit_log",
        "publications",
        "approvals",
    ):
        op.drop_table(table)
    op.drop_table("policy_versions")
