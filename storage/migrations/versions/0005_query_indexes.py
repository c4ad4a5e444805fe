"""Covering indexes for the best trial under a latency limit and for Pareto fronts of
accuracy and latency, so that neither reads the rows of a search's trials one by one.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

INDEXES = {
    "ix_trials_search_id_state_latency_ms_accuracy_number": [
        "search_id",
        "state",
        "latency_ms",
        "accuracy",
        "number",
    ],
    "ix_trials_search_id_state_accuracy_latency_ms_number": [
        "search_id",
        "state",
        "accuracy",
        "latency_ms",
        "number",
    ],
}


def upgrade() -> None:
    for name, columns in INDEXES.items():
        op.create_index(name, "trials", columns)


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, table_name="trials")
