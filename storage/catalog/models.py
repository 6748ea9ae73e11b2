"""Catalog tables (docs/architecture.md §6). Each has a unique constraint on its natural key,
which is what makes every write an idempotent upsert.

runs            (run_number, tag)
raw_files       uri                      → runs   (the current version of the file)
raw_file_versions (raw_file_id, version) → raw_files (superseded versions)
tape_copies     tape_uri                 → raw_files
reco_outputs    (run_id, reco_version)   → runs
quality_reports (run_id, reco_version)   → runs
run_failures    (run_id, step)           → runs   (retry counting, "abandoned")
daq_logbook     run_number               mirror of the DAQ ``Runlog``
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from cygno.storage.catalog.runlog import runlog_columns
from cygno.storage.catalog.sql import KeyString, UTCDateTime, utcnow

URI_LENGTH = 512
TAG_LENGTH = 32
VERSION_LENGTH = 64

RAW_STATES = ("ingested", "quarantined", "deleted")
TAPE_STATES = ("ok", "mismatch", "missing")
RECO_STATES = ("done", "failed")
QUALITY_FLAGS = ("good", "warning", "bad")

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING)


class _Stamped:
    """created_at is set once; updated_at moves only when a value really changes."""

    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Run(_Stamped, Base):
    __tablename__ = "runs"
    __table_args__ = (
        sa.UniqueConstraint("run_number", "tag"),
        # a tag's runs in order: reference runs and trends without a scan
        sa.Index("ix_runs_tag_run_number", "tag", "run_number"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_number: Mapped[int] = mapped_column(sa.Integer)
    tag: Mapped[str] = mapped_column(KeyString(TAG_LENGTH))
    pedestal_run: Mapped[int | None] = mapped_column(sa.Integer)
    run_type: Mapped[str | None] = mapped_column(sa.String(64))
    start_time: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    stop_time: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    events: Mapped[int | None] = mapped_column(sa.Integer)


class RawFile(_Stamped, Base):
    __tablename__ = "raw_files"

    id: Mapped[int] = mapped_column(primary_key=True)
    uri: Mapped[str] = mapped_column(KeyString(URI_LENGTH), unique=True)
    run_id: Mapped[int] = mapped_column(sa.ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    size: Mapped[int | None] = mapped_column(sa.BigInteger)
    adler32: Mapped[str | None] = mapped_column(sa.String(8))
    md5: Mapped[str | None] = mapped_column(sa.String(32))
    events: Mapped[int | None] = mapped_column(sa.Integer)
    pictures: Mapped[int | None] = mapped_column(sa.Integer)
    state: Mapped[str] = mapped_column(sa.String(16), default="ingested")
    reason: Mapped[str | None] = mapped_column(sa.Text)
    # A corrected re-upload under the same key is a new version (RawFileVersion keeps
    # the earlier ones); etag identifies the object's content in the store cheaply.
    version: Mapped[int] = mapped_column(sa.Integer, default=1, server_default="1")
    etag: Mapped[str | None] = mapped_column(sa.String(128))


class RawFileVersion(Base):
    """An earlier content of a raw file, superseded by a re-upload: its facts, and
    where its tape copy and products were kept (``kept``: a list of
    ``{"kind", "uri", …}``)."""

    __tablename__ = "raw_file_versions"
    __table_args__ = (sa.UniqueConstraint("raw_file_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    raw_file_id: Mapped[int] = mapped_column(
        sa.ForeignKey("raw_files.id", ondelete="CASCADE"), index=True
    )
    version: Mapped[int] = mapped_column(sa.Integer)
    size: Mapped[int | None] = mapped_column(sa.BigInteger)
    adler32: Mapped[str | None] = mapped_column(sa.String(8))
    md5: Mapped[str | None] = mapped_column(sa.String(32))
    events: Mapped[int | None] = mapped_column(sa.Integer)
    pictures: Mapped[int | None] = mapped_column(sa.Integer)
    etag: Mapped[str | None] = mapped_column(sa.String(128))
    ingested_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    superseded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    kept: Mapped[Any] = mapped_column(sa.JSON)


class TapeCopy(_Stamped, Base):
    __tablename__ = "tape_copies"

    id: Mapped[int] = mapped_column(primary_key=True)
    tape_uri: Mapped[str] = mapped_column(KeyString(URI_LENGTH), unique=True)
    raw_file_id: Mapped[int] = mapped_column(
        sa.ForeignKey("raw_files.id", ondelete="CASCADE"), index=True
    )
    adler32: Mapped[str] = mapped_column(sa.String(8))
    size: Mapped[int | None] = mapped_column(sa.BigInteger)
    state: Mapped[str] = mapped_column(sa.String(16))
    archived_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    verified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class RecoOutput(_Stamped, Base):
    __tablename__ = "reco_outputs"
    __table_args__ = (sa.UniqueConstraint("run_id", "reco_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(sa.ForeignKey("runs.id", ondelete="CASCADE"))
    reco_version: Mapped[str] = mapped_column(KeyString(VERSION_LENGTH), index=True)
    config_hash: Mapped[str | None] = mapped_column(sa.String(64))
    uri: Mapped[str | None] = mapped_column(sa.String(URI_LENGTH))
    events: Mapped[int | None] = mapped_column(sa.Integer)
    clusters: Mapped[int | None] = mapped_column(sa.Integer)
    state: Mapped[str] = mapped_column(sa.String(16))
    #: storage.lineage id of the inputs (version, pedestal maps, raw bytes)
    lineage: Mapped[str | None] = mapped_column(sa.String(64))


class QualityReport(_Stamped, Base):
    __tablename__ = "quality_reports"
    __table_args__ = (sa.UniqueConstraint("run_id", "reco_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(sa.ForeignKey("runs.id", ondelete="CASCADE"))
    reco_version: Mapped[str] = mapped_column(KeyString(VERSION_LENGTH))
    uri: Mapped[str | None] = mapped_column(sa.String(URI_LENGTH))
    flag: Mapped[str] = mapped_column(sa.String(8))
    reason: Mapped[str | None] = mapped_column(sa.Text)
    summary: Mapped[Any] = mapped_column(sa.JSON)
    #: storage.lineage id of the inputs (the reco output's lineage, the thresholds)
    lineage: Mapped[str | None] = mapped_column(sa.String(64))


class RunFailure(_Stamped, Base):
    __tablename__ = "run_failures"
    __table_args__ = (sa.UniqueConstraint("run_id", "step"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(sa.ForeignKey("runs.id", ondelete="CASCADE"))
    step: Mapped[str] = mapped_column(KeyString(64))
    message: Mapped[str] = mapped_column(sa.Text)
    count: Mapped[int] = mapped_column(sa.Integer)
    abandoned: Mapped[bool] = mapped_column(sa.Boolean)
    first_failed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_failed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


daq_logbook = sa.Table(
    "daq_logbook",
    Base.metadata,
    *runlog_columns(),
    sa.Column("row_hash", sa.String(64)),  # runlog.row_hash of the mirrored content
    sa.Column("mirrored_at", UTCDateTime, nullable=False),
)
