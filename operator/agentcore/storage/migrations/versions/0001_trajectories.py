"""trajectories table

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trajectories",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("job_id", sa.String(36), nullable=False),
        sa.Column("job_name", sa.String(253), nullable=False),
        sa.Column("namespace", sa.String(63), nullable=False),
        sa.Column("agent_id", sa.String(253), nullable=False),
        sa.Column("iteration", sa.Integer, nullable=False),
        sa.Column("group_index", sa.Integer, nullable=False),
        sa.Column("sample_index", sa.Integer, nullable=False),
        sa.Column("query", sa.Text, nullable=False),
        sa.Column("steps", sa.JSON, nullable=False),
        sa.Column("reward", sa.Float, nullable=False),
        sa.Column("normalized_reward", sa.Float, nullable=False),
        sa.Column("advantage", sa.Float, nullable=False),
        sa.Column("success", sa.Boolean, nullable=False),
        sa.Column("execution_time_ms", sa.BigInteger, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_trajectories_job_created_id", "trajectories", ["job_id", "created_at", "id"])
    op.create_index("ix_trajectories_job_success_reward", "trajectories", ["job_id", "success", "reward"])
    op.create_index("ix_trajectories_namespace_agent", "trajectories", ["namespace", "agent_id"])


def downgrade() -> None:
    op.drop_table("trajectories")
