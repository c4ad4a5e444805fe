"""Worker leases: trials count their attempts, hold a lease while running and keep their
strategy's memo; finished trials are found by time; search locks (one worker trains the
supernet while the others wait).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("trials") as batch:
        batch.add_column(
            sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("1"))
        )
        batch.add_column(sa.Column("lease_expires_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("memo_json", sa.Text(), nullable=True))
        batch.create_index("ix_trials_search_id_finished_at", ["search_id", "finished_at"])
    op.create_table(
        "search_locks",
        sa.Column("lock_id", sa.Integer(), nullable=False),
        sa.Column("search_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("holder", sa.String(length=255), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("lock_id", name="pk_search_locks"),
        sa.ForeignKeyConstraint(
            ["search_id"],
            ["searches.search_id"],
            name="fk_search_locks_search_id_searches",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("search_id", "name", name="uq_search_locks_search_id_name"),
    )


def downgrade() -> None:
    op.drop_table("search_locks")
    with op.batch_alter_table("trials") as batch:
        batch.drop_index("ix_trials_search_id_finished_at")
        batch.drop_column("memo_json")
        batch.drop_column("lease_expires_at")
        batch.drop_column("attempts")
