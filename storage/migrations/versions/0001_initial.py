"""Initial schema: searches, trials, latency_measurements, supernet_checkpoints, events.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

# Each gets an index on (search_id, column), named ix_trials_search_id_<column>.
TRIAL_INDEXED = (
    "arch_hash",
    "state",
    "accuracy",
    "loss",
    "latency_ms",
    "latency_p90_ms",
    "params",
    "macs",
)


def upgrade() -> None:
    op.create_table(
        "searches",
        sa.Column("search_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("config_json", sa.Text(), nullable=False),
        sa.Column("config_hash", sa.String(128), nullable=False),
        sa.Column("space", sa.String(255), nullable=False),
        sa.Column("strategy", sa.String(255), nullable=False),
        sa.Column("budget_trials", sa.Integer(), nullable=False),
        sa.Column("versions_json", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("search_id", name="pk_searches"),
    )
    op.create_index("ix_searches_name", "searches", ["name"], unique=True)

    op.create_table(
        "trials",
        sa.Column("trial_id", sa.Integer(), nullable=False),
        sa.Column("search_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("arch_json", sa.Text(), nullable=False),
        sa.Column("arch_hash", sa.String(128), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("accuracy", sa.Float(), nullable=True),
        sa.Column("loss", sa.Float(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("latency_p90_ms", sa.Float(), nullable=True),
        sa.Column("params", sa.BigInteger(), nullable=True),
        sa.Column("macs", sa.BigInteger(), nullable=True),
        sa.Column("metrics_json", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("worker", sa.String(255), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("trial_id", name="pk_trials"),
        sa.ForeignKeyConstraint(
            ["search_id"],
            ["searches.search_id"],
            name="fk_trials_search_id_searches",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("search_id", "number", name="uq_trials_search_id_number"),
    )
    for column in TRIAL_INDEXED:
        op.create_index(f"ix_trials_search_id_{column}", "trials", ["search_id", column])

    op.create_table(
        "latency_measurements",
        sa.Column("measurement_id", sa.Integer(), nullable=False),
        sa.Column("device", sa.String(255), nullable=False),
        sa.Column("arch_hash", sa.String(128), nullable=False),
        sa.Column("batch_size", sa.Integer(), nullable=False),
        sa.Column("input_shape", sa.String(255), nullable=False),
        sa.Column("threads", sa.Integer(), nullable=False),
        sa.Column("median_ms", sa.Float(), nullable=False),
        sa.Column("p90_ms", sa.Float(), nullable=False),
        sa.Column("repeats", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("measurement_id", name="pk_latency_measurements"),
        sa.UniqueConstraint(
            "device",
            "arch_hash",
            "batch_size",
            "input_shape",
            "threads",
            name="uq_latency_measurements_key",
        ),
    )

    op.create_table(
        "supernet_checkpoints",
        sa.Column("checkpoint_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("space", sa.String(255), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("checkpoint_id", name="pk_supernet_checkpoints"),
        sa.UniqueConstraint("key", name="uq_supernet_checkpoints_key"),
    )

    op.create_table(
        "events",
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("search_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="pk_events"),
        sa.ForeignKeyConstraint(
            ["search_id"],
            ["searches.search_id"],
            name="fk_events_search_id_searches",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_events_search_id", "events", ["search_id"])


def downgrade() -> None:
    op.drop_index("ix_events_search_id", table_name="events")
    op.drop_table("events")
    op.drop_table("supernet_checkpoints")
    op.drop_table("latency_measurements")
    for column in TRIAL_INDEXED:
        op.drop_index(f"ix_trials_search_id_{column}", table_name="trials")
    op.drop_table("trials")
    op.drop_index("ix_searches_name", table_name="searches")
    op.drop_table("searches")
