"""fleet: governance generation counter, replica heartbeats, outbox leases per replica

Revision ID: r0002_fleet
Revises: r0001
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r0002_fleet"
down_revision: str | None = "r0001"
branch_labels: str | None = None
depends_on: str | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    governance = op.create_table(
        "governance",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("changed_at", TS),
    )
    op.bulk_insert(governance, [{"id": 1, "generation": 0, "changed_at": None}])
    op.create_table(
        "fleet_replicas",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(300)),
        sa.Column("software", sa.String(50), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("last_seen", TS, nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("serving", sa.Text(), nullable=False),
        sa.Column("redis", sa.String(200)),
    )
    op.create_index("ix_fleet_replicas_last_seen", "fleet_replicas", ["last_seen"])
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(200)))
        batch.add_column(sa.Column("lease_until", TS))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("lease_until")
        batch.drop_column("claimed_by")
    op.drop_index("ix_fleet_replicas_last_seen", "fleet_replicas")
    op.drop_table("fleet_replicas")
    op.drop_table("governance")
