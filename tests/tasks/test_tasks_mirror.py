"""The logbook mirror against a Runlog without a change-time column, on SQLite, MariaDB
and PostgreSQL: open and recent runs re-read every pass, content hashes decide what is
written, the nightly full pass catches late changes to old runs."""

from __future__ import annotations

import datetime as dt

import pytest

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
