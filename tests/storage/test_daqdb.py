"""The DAQ run logbook on SQLite, MariaDB and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import time

import pytest
import sqlalchemy as sa

from cygno.storage.catalog import Catalog
from cygno.storage.daqdb import DaqLogbook


@pytest.fixture
def logbook(db_url):
    book = DaqLogbook(db_url)
    book.create_schema()
    yield book
    book.close()


def _run(number: int, **fields) -> dict:
    row = {
        "run_number": number,
        "run_description": f"LIME run {number}",
        "start_time": dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC),
        "exposure_sec": 0.3,
        "GEM1_V": 420.0,
        "GEM2_V": 420.0,
        "GEM3_V": 420.0,
        "DRIFT_V": 30000.0,
        "HV_STATE": 1,
        "pedestal_run": 0,
        "source_type": "Fe55",
        "source_position": 26.5,
        "run_type": "data",
        "number_of_events": 400,
        "file_s3_tag": "LNGS",
    }
    row.update(fields)
    return row


def test_table_has_the_experiment_columns(logbook):
    columns = {c["name"] for c in sa.inspect(logbook.engine).get_columns("Runlog")}
    expected = {
        "run_number", "run_description", "start_time", "stop_time", "exposure_sec",
        "GEM1_V", "GEM2_V", "GEM3_V", "DRIFT_V", "HV_STATE", "pedestal_run", "source_type",
        "source_position", "run_type", "number_of_events", "storage_local_status",
        "storage_cloud_status", "storage_tape_status", "file_size", "file_checksum",
        "file_s3_tag", "online_reco_status", "last_modified",
    }  # fmt: skip
    assert expected <= columns
    logbook.create_schema()  # idempotent


def test_insert_get_and_update_track_changes(logbook):
    logbook.insert_run(**_run(100))
    row = logbook.get(100)
    assert row["GEM1_V"] == 420.0 and row["source_position"] == 26.5
    assert row["start_time"] == dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)
    first_change = row["last_modified"]
    assert not logbook.update_run(100, GEM1_V=420.0)  # same value: no change recorded
    assert logbook.get(100)["last_modified"] == first_change
    time.sleep(0.002)
    assert logbook.update_run(100, storage_cloud_status=1, file_checksum="a" * 32)
    updated = logbook.get(100)
    assert updated["storage_cloud_status"] == 1
    assert updated["last_modified"] > first_change
    assert logbook.get(101) is None
    with pytest.raises(LookupError):
        logbook.update_run(101, HV_STATE=0)
    with pytest.raises(TypeError):
        logbook.update_run(100, GEM9_V=1.0)
    with pytest.raises(TypeError):
        logbook.update_run(100, last_modified=first_change)
    with pytest.raises(sa.exc.IntegrityError):
        logbook.insert_run(**_run(100))


def test_incremental_reads_by_number_and_by_change(logbook):
    assert logbook.last_run_number() is None
    for number in (1, 2, 3, 4):
        logbook.insert_run(**_run(number))
        time.sleep(0.002)
    assert logbook.last_run_number() == 4
    assert [r["run_number"] for r in logbook.runs_after(None)] == [1, 2, 3, 4]
    assert [r["run_number"] for r in logbook.runs_after(2)] == [3, 4]
    assert [r["run_number"] for r in logbook.runs_after(2, limit=1)] == [3]
    mark = logbook.get(4)["last_modified"]
    assert logbook.changed_since(mark) == []
    time.sleep(0.002)
    logbook.update_run(2, stop_time=dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.UTC))
    changed = logbook.changed_since(mark)
    assert [r["run_number"] for r in changed] == [2]
    assert [r["run_number"] for r in logbook.changed_since(None)] == [1, 3, 4, 2]
    naive_mark = mark.replace(tzinfo=None)  # naive datetimes are UTC
    assert [r["run_number"] for r in logbook.changed_since(naive_mark)] == [2]


def test_pedestal_for_follows_the_reconstruction_rule(logbook):
    logbook.insert_run(**_run(10, pedestal_run=1, HV_STATE=0, number_of_events=200))
    logbook.insert_run(**_run(11))
    logbook.insert_run(**_run(12, pedestal_run=1, HV_STATE=0, number_of_events=99))  # too short
    logbook.insert_run(**_run(13, pedestal_run=1, HV_STATE=1, number_of_events=500))  # HV on
    logbook.insert_run(**_run(14))
    logbook.insert_run(**_run(15, pedestal_run=1, HV_STATE=0, number_of_events=100))
    logbook.insert_run(**_run(16))
    assert logbook.pedestal_for(9) is None
    assert logbook.pedestal_for(10) == 10  # a pedestal run serves itself
    assert logbook.pedestal_for(14) == 10
    assert logbook.pedestal_for(16) == 15


def test_logbook_rows_mirror_into_the_catalog_unchanged(db_url, logbook):
    for number in (1, 2):
        logbook.insert_run(**_run(number))
    catalog = Catalog(db_url)  # same database, different tables: fine
    try:
        assert catalog.upsert_logbook(logbook.runs_after(None)) == 2
        assert catalog.upsert_logbook(logbook.changed_since(None)) == 0
        mirrored = catalog.logbook(2)
        source = logbook.get(2)
        assert {k: mirrored[k] for k in source} == source
        _, high_water = catalog.logbook_high_water()
        assert high_water == source["last_modified"]
    finally:
        catalog.close()
