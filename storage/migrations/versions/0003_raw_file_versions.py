"""Raw-file versions: a corrected re-upload under the same key is a new version of the
raw file (``raw_files.version``, ``raw_files.etag``); ``raw_file_versions`` keeps the
superseded ones and where their tape copy and products were kept.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from cygno.storage.catalog.sql import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("raw_files") as batch:
        batch.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("etag", sa.String(128), nullable=True))
    op.create_table(
        "raw_file_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("raw_file_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("adler32", sa.String(8), nullable=True),
        sa.Column("md5", sa.String(32), nullable=True),
        sa.Column("events", sa.Integer(), nullable=True),
        sa.Column("pictures", sa.Integer(), nullable=True),
        sa.Column("etag", sa.String(128), nullable=True),
        sa.Column("ingested_at", UTCDateTime(), nullable=False),
        sa.Column("superseded_at", UTCDateTime(), nullable=False),
        sa.Column("kept", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["raw_file_id"],
            ["raw_files.id"],
            name="fk_raw_file_versions_raw_file_id_raw_files",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_raw_file_versions"),
        sa.UniqueConstraint(
            "raw_file_id", "version", name="uq_raw_file_versions_raw_file_id_version"
        ),
    )
    op.create_index("ix_raw_file_versions_raw_file_id", "raw_file_versions", ["raw_file_id"])


def downgrade() -> None:
    op.drop_index("ix_raw_file_versions_raw_file_id", table_name="raw_file_versions")
    op.drop_table("raw_file_versions")
    with op.batch_alter_table("raw_files") as batch:
        batch.drop_column("etag")
        batch.drop_column("version")
