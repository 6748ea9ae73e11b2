"""The logbook mirror against a Runlog without a change-time column, on SQLite, MariaDB
and PostgreSQL: open and recent runs re-read every pass, content hashes decide what is
written, the nightly full pass catches late changes to old runs."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from cygno.settings import get_settings
from cygno.storage.daqdb import DaqLogbook
from cygno.tasks import resources
from cygno.tasks.mirror import mirror_logbook

T0 = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def daq(db_url, monkeypatch):
    """The DAQ's Runlog and the catalog in one test database (different tables)."""
    monkeypatch.setenv("CYGNO_DAQDB_URL", db_url)
    monkeypatch.setenv("CYGNO_CATALOG_URL", db_url)
    get_settings.cache_clear()
    book = DaqLogbook(db_url)
    book.create_schema()
    yield book
    resources.catalog().close()
    book.close()
    get_settings.cache_clear()


def _begin(book: DaqLogbook, run: int) -> None:
    book.insert_run(
        run_number=run,
        run_description=f"LIME run {run}",
        start_time=T0 + dt.timedelta(minutes=20 * run),
        exposure_sec=0.3,
        HV_STATE=1,
        pedestal_run=0,
        run_type="data",
        storage_local_status=0,
        storage_cloud_status=0,
        storage_tape_status=0,
        PMT1_V=770.0,
    )


def _end(book: DaqLogbook, run: int) -> None:
    book.update_run(run, stop_time=T0 + dt.timedelta(minutes=20 * run + 15), number_of_events=400)


def test_incremental_passes_follow_open_and_recent_runs_by_content(daq):
    for run in range(1, 11):
        _begin(daq, run)
        _end(daq, run)
    _begin(daq, 11)  # still taking data
    mirror = resources.catalog()
    assert mirror_logbook.fn(recent_runs=3) == 11
    assert mirror_logbook.fn(recent_runs=3) == 0  # nothing changed: nothing written
    assert mirror.logbook_progress() == (11, [11])

    _end(daq, 11)  # the open run closes
    daq.update_run(10, file_checksum="c" * 32)  # the uploader, inside the window
    daq.update_run(9, storage_cloud_status=0)  # an UPDATE that changes nothing
    daq.update_run(9, PMT1_V=771.0)  # a column the catalog does not mirror
    assert mirror_logbook.fn(recent_runs=3) == 2
    assert mirror.logbook(11)["number_of_events"] == 400
    assert mirror.logbook(10)["file_checksum"] == "c" * 32
    assert mirror.logbook_progress() == (11, [])

    _begin(daq, 12)
    daq.update_run(2, storage_tape_status=1)  # the tape job, days later, an old run
    assert mirror_logbook.fn(recent_runs=3) == 1  # the new run only
    assert mirror.logbook(2)["storage_tape_status"] == 0
    assert mirror_logbook.fn(full=True) == 1  # the nightly pass finds the late change
    assert mirror.logbook(2)["storage_tape_status"] == 1
    assert mirror_logbook.fn(full=True) == 0
    assert mirror.summary()["logbook_rows"] == 12


def _lngs_runlog() -> sa.Table:
    """Runlog with the columns LNGS's mlogger configuration links (begin and end of run)
    plus the uploader's: no change time, no T3–T6/CATHODE voltages, extra DAQ columns."""
    double = sa.Double
    return sa.Table(
        "Runlog",
        sa.MetaData(),
        sa.Column("run_number", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("run_description", sa.Text),
        sa.Column("start_time", sa.DateTime),
        sa.Column("stop_time", sa.DateTime),
        sa.Column("exposure_sec", double),
        sa.Column("storage_local_status", sa.Integer),
        sa.Column("storage_cloud_status", sa.Integer),
        sa.Column("storage_tape_status", sa.Integer),
        sa.Column("sequence_filename", sa.String(256)),
        sa.Column("sequencer_running", sa.Integer),
        sa.Column("pedestal_run", sa.Integer),
        sa.Column("source_type", sa.String(64)),
        sa.Column("source_position", double),
        sa.Column("discrimination_threshold", double),
        sa.Column("trigger_logic", sa.String(64)),
        sa.Column("run_type", sa.String(64)),
        *(sa.Column(n, double) for n in ("GEM3_V", "GEM2_V", "GEM1_V", "T2_V", "T1_V")),
        *(sa.Column(n, double) for n in ("DRIFT_V", "OFFSET_V", "PMT1_V", "total_gas_flow")),
        sa.Column("HV_STATE", sa.Integer),
        sa.Column("number_of_events", sa.Integer),
        sa.Column("online_reco_status", sa.Integer),
        sa.Column("file_checksum", sa.String(32)),
        sa.Column("file_s3_tag", sa.String(64)),
    )


def test_the_mirror_reads_the_columns_the_daq_really_has(db_url, monkeypatch):
    monkeypatch.setenv("CYGNO_DAQDB_URL", db_url)
    monkeypatch.setenv("CYGNO_CATALOG_URL", db_url)
    get_settings.cache_clear()
    table = _lngs_runlog()
    engine = sa.create_engine(db_url)
    table.create(engine)
    start = dt.datetime(2026, 11, 23, 9, 0)  # mlogger writes naive times
    with engine.begin() as connection:
        for run, pedestal in ((1, 1), (2, 0)):
            connection.execute(
                table.insert().values(
                    run_number=run, start_time=start, pedestal_run=pedestal, GEM1_V=440.0,
                    HV_STATE=1 - pedestal, sequencer_running=0, trigger_logic="camera",
                )
            )  # fmt: skip
        connection.execute(table.update().where(table.c.run_number == 1).values(
            stop_time=start + dt.timedelta(minutes=10), number_of_events=200))  # fmt: skip
    try:
        assert resources.logbook().pedestal_for(2) == 1
        assert mirror_logbook.fn() == 2
        mirrored = resources.catalog().logbook(2)
        assert mirrored["GEM1_V"] == 440.0 and mirrored["CATHODE_V"] is None
        assert mirrored["start_time"] == start.replace(tzinfo=dt.UTC)
        assert resources.catalog().logbook_progress() == (2, [2])
        with engine.begin() as connection:
            connection.execute(table.update().where(table.c.run_number == 2).values(
                stop_time=start + dt.timedelta(minutes=30), number_of_events=400))  # fmt: skip
        assert mirror_logbook.fn() == 1 and mirror_logbook.fn() == 0
    finally:
        resources.catalog().close()
        resources.logbook().close()
        engine.dispose()
        get_settings.cache_clear()
