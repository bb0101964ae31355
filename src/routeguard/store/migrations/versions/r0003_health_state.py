"""durable health: signals, ejections and the serving model per policy and scope

Revision ID: r0003_health_state
Revises: r0002_fleet
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r0003_health_state"
down_revision: str | None = "r0002_fleet"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "health_state",
        sa.Column("key", sa.String(100), primary_key=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("health_state")
