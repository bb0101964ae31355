"""planner: an upload's intended scope and required approver; who claimed a human-queue entry, and when

Revision ID: r0004_planner
Revises: r0003_health_state
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r0004_planner"
down_revision: str | None = "r0003_health_state"
branch_labels: str | None = None
depends_on: str | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("policy_versions") as batch:
        batch.add_column(sa.Column("intended_scope", sa.Text()))
        batch.add_column(sa.Column("required_approver", sa.String(200)))
    with op.batch_alter_table("human_queue") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(200)))
        batch.add_column(sa.Column("claimed_at", TS))


def downgrade() -> None:
    with op.batch_alter_table("human_queue") as batch:
        batch.drop_column("claimed_at")
        batch.drop_column("claimed_by")
    with op.batch_alter_table("policy_versions") as batch:
        batch.drop_column("required_approver")
        batch.drop_column("intended_scope")
