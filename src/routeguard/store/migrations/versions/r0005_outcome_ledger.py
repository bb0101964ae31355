"""outcome ledger: one row per served call or reported outcome (CONTRACT §7), indexed by time

Revision ID: r0002_ledger
Revises: r0004_planner
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r0002_ledger"
down_revision: str | None = "r0004_planner"
branch_labels: str | None = None
depends_on: str | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "outcome_ledger",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("ts", TS, nullable=False),
        sa.Column("trace_id", sa.String(100)),
        sa.Column("policy", sa.String(200)),
        sa.Column("version", sa.Integer()),
        sa.Column("tenant", sa.String(200)),
        sa.Column("task_class", sa.String(200)),
        sa.Column("data_class", sa.String(64)),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("error", sa.String(32)),
        sa.Column("latency_ms", sa.Float()),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.Column("cost_usd", sa.Float()),
        sa.Column("quality", sa.Float()),
    )
    op.create_index("ix_outcome_ledger_ts", "outcome_ledger", ["ts"])


def downgrade() -> None:
    op.drop_index("ix_outcome_ledger_ts", table_name="outcome_ledger")
    op.drop_table("outcome_ledger")
