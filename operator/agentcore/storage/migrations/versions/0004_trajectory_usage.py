"""trajectory_usage table: stored trajectories per namespace, the counter the per-tenant cap reads

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trajectory_usage",
        sa.Column("namespace", sa.String(63), primary_key=True),
        sa.Column("rows", sa.BigInteger(), nullable=False),
    )
    # Trajectories are never deleted, so the counter starts as the rows already stored.
    op.execute(
        "INSERT INTO trajectory_usage (namespace, rows) "
        "SELECT namespace, count(*) FROM trajectories GROUP BY namespace"
    )


def downgrade() -> None:
    op.drop_table("trajectory_usage")
