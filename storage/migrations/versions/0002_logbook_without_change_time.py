"""The logbook mirror compares row content: ``row_hash`` replaces ``last_modified``
(the experiment's ``Runlog`` has no change-time column).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from cygno.storage.catalog.sql import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_daq_logbook_last_modified", table_name="daq_logbook")
    with op.batch_alter_table("daq_logbook") as batch:
        batch.drop_column("last_modified")
        batch.add_column(sa.Column("row_hash", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("daq_logbook") as batch:
        batch.drop_column("row_hash")
        batch.add_column(
            sa.Column(
                "last_modified", UTCDateTime(), nullable=False, server_default="1970-01-01 00:00:00"
            )
        )
    op.create_index("ix_daq_logbook_last_modified", "daq_logbook", ["last_modified"])
