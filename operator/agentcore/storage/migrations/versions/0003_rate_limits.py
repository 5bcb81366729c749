"""rate_limits table: the GCRA state of the API servers' shared rate-limit store

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_limits",
        sa.Column("caller", sa.String(300), primary_key=True),
        sa.Column("bucket", sa.String(128), primary_key=True),
        # The theoretical arrival time, epoch seconds: a row whose TAT has passed is a full bucket.
        sa.Column("tat", sa.Float(precision=53), nullable=False),
    )
    op.create_index("ix_rate_limits_tat", "rate_limits", ["tat"])


def downgrade() -> None:
    op.drop_table("rate_limits")
