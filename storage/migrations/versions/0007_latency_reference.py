"""Latency figures taken against a reference network: each measurement keeps its reference,
its ratio to it, the reference's own figure meanwhile and the machine's drift; each device key
keeps the anchor figure of its reference. Rows measured before keep working as absolute
figures (no reference).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("latency_measurements") as batch:
        batch.add_column(sa.Column("reference_key", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("ratio", sa.Float(), nullable=True))
        batch.add_column(sa.Column("reference_ms", sa.Float(), nullable=True))
        batch.add_column(sa.Column("drift", sa.Float(), nullable=True))
        batch.add_column(
            sa.Column("drifted", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "latency_anchors",
        sa.Column("anchor_id", sa.Integer(), nullable=False),
        sa.Column("device", sa.String(length=255), nullable=False),
        sa.Column("batch_size", sa.Integer(), nullable=False),
        sa.Column("input_shape", sa.String(length=255), nullable=False),
        sa.Column("threads", sa.Integer(), nullable=False),
        sa.Column("reference_key", sa.String(length=128), nullable=False),
        sa.Column("anchor_ms", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("anchor_id", name=op.f("pk_latency_anchors")),
        sa.UniqueConstraint(
            "device",
            "batch_size",
            "input_shape",
            "threads",
            "reference_key",
            name="uq_latency_anchors_key",
        ),
    )


def downgrade() -> None:
    op.drop_table("latency_anchors")
    with op.batch_alter_table("latency_measurements") as batch:
        for column in ("drifted", "drift", "reference_ms", "ratio", "reference_key"):
            batch.drop_column(column)
