"""durable health (signals, ejections, serving routes) and the fleet's logged serving model per policy, scope and
version (the compare-and-set behind "each routing change logged once per fleet")

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
    op.create_table(
        "route_serving",
        sa.Column("policy", sa.String(200), primary_key=True),
        sa.Column("scope", sa.String(300), primary_key=True),
        sa.Column("version", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("model", sa.String(200)),
        sa.Column("audit_seq", sa.Integer(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("route_serving")
    op.drop_table("health_state")
