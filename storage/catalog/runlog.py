"""The columns of the DAQ run logbook (``Runlog``), shared by the DAQ DB and its catalog mirror.

Names and meaning are the experiment's own (issue 2 §6), so a row read from the DAQ
database lands in the mirror unchanged. ``last_modified`` is ours: it changes on every
write, which is what lets the mirror read incrementally "by change".
"""

from __future__ import annotations

import sqlalchemy as sa

from cygno.storage.catalog.sql import UTCDateTime

VOLTAGE_COLUMNS = (
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


def runlog_columns() -> list[sa.Column]:
    """Fresh Column objects (a Column can belong to one table only)."""
    return [
        sa.Column("run_number", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("run_description", sa.Text),
        sa.Column("start_time", UTCDateTime),
        sa.Column("stop_time", UTCDateTime),
        sa.Column("exposure_sec", sa.Double),
        *(sa.Column(name, sa.Double) for name in VOLTAGE_COLUMNS),
        sa.Column("HV_STATE", sa.Integer),
        sa.Column("pedestal_run", sa.Integer),
        sa.Column("source_type", sa.String(64)),
        sa.Column("source_position", sa.Double),
        sa.Column("run_type", sa.String(64)),
        sa.Column("number_of_events", sa.Integer),
        sa.Column("storage_local_status", sa.Integer),
        sa.Column("storage_cloud_status", sa.Integer),
        sa.Column("storage_tape_status", sa.Integer),
        sa.Column("file_size", sa.BigInteger),
        sa.Column("file_checksum", sa.String(32)),
        sa.Column("file_s3_tag", sa.String(64)),
        sa.Column("online_reco_status", sa.Integer),
        sa.Column("last_modified", UTCDateTime, nullable=False, index=True),
    ]


RUNLOG_COLUMN_NAMES = tuple(column.name for column in runlog_columns())
