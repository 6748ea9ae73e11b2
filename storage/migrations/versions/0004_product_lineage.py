"""Product lineage: reco outputs and quality reports record the lineage id of what made
them (``storage.lineage``), so "already done?" compares inputs, not only names; an index
on ``runs (tag, run_number)`` serves the reference-run and trend queries.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TABLES = ("reco_outputs", "quality_reports")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("lineage", sa.String(64), nullable=True))
    op.create_index("ix_runs_tag_run_number", "runs", ["tag", "run_number"])


def downgrade() -> None:
    op.drop_index("ix_runs_tag_run_number", table_name="runs")
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("lineage")
