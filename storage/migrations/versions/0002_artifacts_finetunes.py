"""Search artifacts (JSON per search and kind) and fine-tuning runs of trials.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "search_artifacts",
        sa.Column("artifact_id", sa.Integer(), nullable=False),
        sa.Column("search_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("content_json", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("artifact_id", name="pk_search_artifacts"),
        sa.ForeignKeyConstraint(
            ["search_id"],
            ["searches.search_id"],
            name="fk_search_artifacts_search_id_searches",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("search_id", "kind", name="uq_search_artifacts_search_id_kind"),
    )
    op.create_table(
        "finetunes",
        sa.Column("finetune_id", sa.Integer(), nullable=False),
        sa.Column("trial_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("settings_json", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("steps_done", sa.Integer(), nullable=False),
        sa.Column("accuracy", sa.Float(), nullable=True),
        sa.Column("test_accuracy", sa.Float(), nullable=True),
        sa.Column("path", sa.Text(), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("finetune_id", name="pk_finetunes"),
        sa.ForeignKeyConstraint(
            ["trial_id"],
            ["trials.trial_id"],
            name="fk_finetunes_trial_id_trials",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("trial_id", "key", name="uq_finetunes_trial_id_key"),
    )


def downgrade() -> None:
    op.drop_table("finetunes")
    op.drop_table("search_artifacts")
