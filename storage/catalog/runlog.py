"""The columns of the DAQ run logbook (``Runlog``) that the catalog mirrors, and the
content hash that tells the mirror whether a row changed.

Names and meaning are the experiment's own (MIDAS mlogger's SQL runlog: begin-of-run
columns inserted, end-of-run columns updated, later statuses set by the uploader, the
tape job and the online reconstruction), so a row read from the DAQ database lands in
the mirror unchanged. The DAQ writes no change time: the mirror compares row content.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from cygno.storage.catalog.sql import UTCDateTime, as_utc

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
    ]


RUNLOG_COLUMN_NAMES = tuple(column.name for column in runlog_columns())


def _canonical(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return as_utc(value).isoformat()
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, bool):
        return int(value)
    if value is None or isinstance(value, int | str):
        return value
    return str(value)  # Decimal and the like: their exact text


def row_hash(row: Mapping[str, Any]) -> str:
    """sha256 of a row's mirrored columns, the same for the same content whichever
    database it was read from (timestamps in UTC, floats by their exact repr)."""
    content = [[name, _canonical(row.get(name))] for name in RUNLOG_COLUMN_NAMES]
    return hashlib.sha256(json.dumps(content, separators=(",", ":")).encode()).hexdigest()
