"""Covering indexes for the best trial under a latency limit and for Pareto fronts of
accuracy and latency, in place of the indexes on (search_id, accuracy) and (search_id,
latency_ms).

Every query on these columns also asks for complete trials, so ``state`` comes second; the
columns that the queries sort on follow, in the direction they sort, so that neither query
reads the rows of a search's trials one by one (see ``storage/tables.py``).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None

REPLACED = {
    "ix_trials_search_id_accuracy": ["search_id", "accuracy"],
    "ix_trials_search_id_latency_ms": ["search_id", "latency_ms"],
}
COVERING: dict[str, list[sa.ColumnElement[Any]]] = {
    "ix_trials_search_id_state_accuracy_latency_ms_number": [
        sa.column("search_id"),
        sa.column("state"),
        sa.column("accuracy"),
        sa.desc(sa.column("latency_ms")),
        sa.desc(sa.column("number")),
    ],
    "ix_trials_search_id_state_latency_ms_accuracy_number": [
        sa.column("search_id"),
        sa.column("state"),
        sa.column("latency_ms"),
        sa.desc(sa.column("accuracy")),
        sa.column("number"),
    ],
}


def upgrade() -> None:
    for name, columns in COVERING.items():
        op.create_index(name, "trials", columns)
    for name in REPLACED:
        op.drop_index(name, table_name="trials")


def downgrade() -> None:
    for name, names in REPLACED.items():
        op.create_index(name, "trials", names)
    for name in COVERING:
        op.drop_index(name, table_name="trials")
