"""outcome ledger: the deployment a call went to (CONTRACT §1 deployments), nullable

Revision ID: r0006_ledger_deployment
Revises: r0002_ledger
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "r0006_ledger_deployment"
down_revision: str | None = "r0002_ledger"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("outcome_ledger", sa.Column("deployment", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outcome_ledger") as batch:  # SQLite drops a column through a table copy
        batch.drop_column("deployment")
