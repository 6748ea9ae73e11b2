"""The DAQ run logbook on SQLite, MariaDB and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from cygno.storage.catalog import Catalog
from cygno.storage.daqdb import DAQ_ONLY_COLUMNS, DaqLogbook


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


def test_table_has_the_experiment_columns_and_no_change_time(logbook):
    columns = {c["name"] for c in sa.inspect(logbook.engine).get_columns("Runlog")}
    expected = {
        "run_number", "run_description", "start_time", "stop_time", "exposure_sec",
        "GEM1_V", "GEM2_V", "GEM3_V", "DRIFT_V", "HV_STATE", "pedestal_run", "source_type",
        "source_position", "run_type", "number_of_events", "storage_local_status",
        "storage_cloud_status", "storage_tape_status", "file_size", "file_checksum",
        "file_s3_tag", "online_reco_status", "PMT1_V", "total_gas_flow", "sequence_filename",
    }  # fmt: skip
    assert expected <= columns
    assert not [c for c in columns if "modif" in c.lower() or "update" in c.lower()]
    assert set(DAQ_ONLY_COLUMNS) <= columns
    logbook.create_schema()  # idempotent


def test_rows_are_written_as_the_daq_writes_them(logbook):
    logbook.insert_run(**_run(100, PMT1_V=772.0))  # begin of run
    row = logbook.get(100)
    assert row["GEM1_V"] == 420.0 and row["source_position"] == 26.5
    assert row["start_time"] == dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)
    assert row["stop_time"] is None  # open
    stop = dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.UTC)
    logbook.update_run(100, stop_time=stop, number_of_events=400)  # end of run
    logbook.update_run(100, file_checksum="a" * 32)  # the uploader, column by column
    logbook.update_run(100, storage_cloud_status=1)
    logbook.update_run(100, storage_cloud_status=1)  # the same value again: fine
    row = logbook.get(100)
    assert (row["stop_time"], row["file_checksum"], row["storage_cloud_status"]) == (
        stop,
        "a" * 32,
        1,
    )
    assert logbook.get(101) is None
    with pytest.raises(LookupError):
        logbook.update_run(101, HV_STATE=0)
    with pytest.raises(TypeError, match="GEM9_V"):
        logbook.update_run(100, GEM9_V=1.0)
    with pytest.raises(sa.exc.IntegrityError):
        logbook.insert_run(**_run(100))


def test_reads_by_window_by_run_and_in_batches(logbook):
    assert logbook.last_run_number() is None
    assert list(logbook.batches(2)) == []
    for number in (1, 2, 3, 4, 5):
        logbook.insert_run(**_run(number))
    assert logbook.last_run_number() == 5
    assert [r["run_number"] for r in logbook.rows()] == [1, 2, 3, 4, 5]
    assert [r["run_number"] for r in logbook.rows(after=3)] == [4, 5]
    assert [r["run_number"] for r in logbook.rows(after=3, runs=[1, 4])] == [1, 4, 5]
    batches = [[r["run_number"] for r in batch] for batch in logbook.batches(2)]
    assert batches == [[1, 2], [3, 4], [5]]


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
        logbook.insert_run(**_run(number, PMT2_V=770.0))
    catalog = Catalog(db_url)  # same database, different tables: fine
    try:
        assert catalog.upsert_logbook(logbook.rows()) == 2
        assert catalog.upsert_logbook(logbook.rows()) == 0  # same content: nothing written
        mirrored = catalog.logbook(2)
        source = logbook.get(2)
        assert {k: mirrored[k] for k in source if k not in DAQ_ONLY_COLUMNS} == {
            k: v for k, v in source.items() if k not in DAQ_ONLY_COLUMNS
        }
        assert not set(DAQ_ONLY_COLUMNS) & set(mirrored)
        assert catalog.logbook_progress() == (2, [1, 2])  # both still open
    finally:
        catalog.close()
