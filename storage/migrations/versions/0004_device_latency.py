"""Trials keep the key of their latency measurements, so that a search can be re-ranked for
every device that measured it; latency calibrations (a lookup table and a predictor) per device.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("trials") as batch:
        batch.add_column(sa.Column("latency_key", sa.String(length=128), nullable=True))
        batch.create_index("ix_trials_search_id_latency_key", ["search_id", "latency_key"])
    op.create_table(
        "latency_calibrations",
        sa.Column("calibration_id", sa.Integer(), nullable=False),
        sa.Column("device", sa.String(length=255), nullable=False),
        sa.Column("space_key", sa.String(length=128), nullable=False),
        sa.Column("batch_size", sa.Integer(), nullable=False),
        sa.Column("input_shape", sa.String(length=255), nullable=False),
        sa.Column("threads", sa.Integer(), nullable=False),
        sa.Column("space", sa.String(length=255), nullable=False),
        sa.Column("content_json", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("calibration_id", name=op.f("pk_latency_calibrations")),
        sa.UniqueConstraint(
            "device",
            "space_key",
            "batch_size",
            "input_shape",
            "threads",
            name="uq_latency_calibrations_key",
        ),
    )


def downgrade() -> None:
    op.drop_table("latency_calibrations")
    with op.batch_alter_table("trials") as batch:
        batch.drop_index("ix_trials_search_id_latency_key")
        batch.drop_column("latency_key")
