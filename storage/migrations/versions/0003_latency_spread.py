"""Latency measurements keep their spread and whether they stayed noisy.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("latency_measurements") as batch:
        batch.add_column(sa.Column("spread", sa.Float(), nullable=True))
        batch.add_column(
            sa.Column("noisy", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("latency_measurements") as batch:
        batch.drop_column("noisy")
        batch.drop_column("spread")
