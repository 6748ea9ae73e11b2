"""Initial catalog: runs, raw files, tape copies, reco outputs, quality, failures, logbook mirror.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from cygno.storage.catalog.sql import KeyString, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

VOLTAGES = (
    "GEM1_V",
    "GEM2_V",
    "GEM3_V",
    "DRIFT_V",
    "T1_V",
    "T2_V",
    "T3_V",
    "T4_V",
    "T5_V",
    "T6_V",
    "CATHODE_V",
)


def _stamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_number", sa.Integer(), nullable=False),
        sa.Column("tag", KeyString(32), nullable=False),
        sa.Column("pedestal_run", sa.Integer(), nullable=True),
        sa.Column("run_type", sa.String(64), nullable=True),
        sa.Column("start_time", UTCDateTime(), nullable=True),
        sa.Column("stop_time", UTCDateTime(), nullable=True),
        sa.Column("events", sa.Integer(), nullable=True),
        *_stamps(),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
        sa.UniqueConstraint("run_number", "tag", name="uq_runs_run_number_tag"),
    )
    op.create_table(
        "raw_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uri", KeyString(512), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("adler32", sa.String(8), nullable=True),
        sa.Column("md5", sa.String(32), nullable=True),
        sa.Column("events", sa.Integer(), nullable=True),
        sa.Column("pictures", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        *_stamps(),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_raw_files_run_id_runs", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_raw_files"),
        sa.UniqueConstraint("uri", name="uq_raw_files_uri"),
    )
    op.create_index("ix_raw_files_run_id", "raw_files", ["run_id"])
    op.create_table(
        "tape_copies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tape_uri", KeyString(512), nullable=False),
        sa.Column("raw_file_id", sa.Integer(), nullable=False),
        sa.Column("adler32", sa.String(8), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("archived_at", UTCDateTime(), nullable=False),
        sa.Column("verified_at", UTCDateTime(), nullable=True),
        *_stamps(),
        sa.ForeignKeyConstraint(
            ["raw_file_id"],
            ["raw_files.id"],
            name="fk_tape_copies_raw_file_id_raw_files",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_tape_copies"),
        sa.UniqueConstraint("tape_uri", name="uq_tape_copies_tape_uri"),
    )
    op.create_index("ix_tape_copies_raw_file_id", "tape_copies", ["raw_file_id"])
    op.create_table(
        "reco_outputs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("reco_version", KeyString(64), nullable=False),
        sa.Column("config_hash", sa.String(64), nullable=True),
        sa.Column("uri", sa.String(512), nullable=True),
        sa.Column("events", sa.Integer(), nullable=True),
        sa.Column("clusters", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        *_stamps(),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_reco_outputs_run_id_runs", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_reco_outputs"),
        sa.UniqueConstraint("run_id", "reco_version", name="uq_reco_outputs_run_id_reco_version"),
    )
    op.create_index("ix_reco_outputs_reco_version", "reco_outputs", ["reco_version"])
    op.create_table(
        "quality_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("reco_version", KeyString(64), nullable=False),
        sa.Column("uri", sa.String(512), nullable=True),
        sa.Column("flag", sa.String(8), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("summary", sa.JSON(), nullable=False),
        *_stamps(),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_quality_reports_run_id_runs", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_quality_reports"),
        sa.UniqueConstraint(
            "run_id", "reco_version", name="uq_quality_reports_run_id_reco_version"
        ),
    )
    op.create_table(
        "run_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("step", KeyString(64), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("abandoned", sa.Boolean(), nullable=False),
        sa.Column("first_failed_at", UTCDateTime(), nullable=False),
        sa.Column("last_failed_at", UTCDateTime(), nullable=False),
        *_stamps(),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_run_failures_run_id_runs", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_run_failures"),
        sa.UniqueConstraint("run_id", "step", name="uq_run_failures_run_id_step"),
    )
    op.create_table(
        "daq_logbook",
        sa.Column("run_number", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("run_description", sa.Text(), nullable=True),
        sa.Column("start_time", UTCDateTime(), nullable=True),
        sa.Column("stop_time", UTCDateTime(), nullable=True),
        sa.Column("exposure_sec", sa.Double(), nullable=True),
        *(sa.Column(name, sa.Double(), nullable=True) for name in VOLTAGES),
        sa.Column("HV_STATE", sa.Integer(), nullable=True),
        sa.Column("pedestal_run", sa.Integer(), nullable=True),
        sa.Column("source_type", sa.String(64), nullable=True),
        sa.Column("source_position", sa.Double(), nullable=True),
        sa.Column("run_type", sa.String(64), nullable=True),
        sa.Column("number_of_events", sa.Integer(), nullable=True),
        sa.Column("storage_local_status", sa.Integer(), nullable=True),
        sa.Column("storage_cloud_status", sa.Integer(), nullable=True),
        sa.Column("storage_tape_status", sa.Integer(), nullable=True),
        sa.Column("file_size", sa.BigInteger(), nullable=True),
        sa.Column("file_checksum", sa.String(32), nullable=True),
        sa.Column("file_s3_tag", sa.String(64), nullable=True),
        sa.Column("online_reco_status", sa.Integer(), nullable=True),
        sa.Column("last_modified", UTCDateTime(), nullable=False),
        sa.Column("mirrored_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("run_number", name="pk_daq_logbook"),
    )
    op.create_index("ix_daq_logbook_last_modified", "daq_logbook", ["last_modified"])


def downgrade() -> None:
    op.drop_index("ix_daq_logbook_last_modified", table_name="daq_logbook")
    op.drop_table("daq_logbook")
    op.drop_table("run_failures")
    op.drop_table("quality_reports")
    op.drop_index("ix_reco_outputs_reco_version", table_name="reco_outputs")
    op.drop_table("reco_outputs")
    op.drop_index("ix_tape_copies_raw_file_id", table_name="tape_copies")
    op.drop_table("tape_copies")
    op.drop_index("ix_raw_files_run_id", table_name="raw_files")
    op.drop_table("raw_files")
    op.drop_table("runs")
