"""The catalog on SQLite, MariaDB and PostgreSQL: schema, idempotent upserts, queries."""

from __future__ import annotations

import datetime as dt
import threading

import numpy as np
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from cygno.storage.catalog import Catalog
from cygno.storage.catalog.models import Base

RAW = "s3://cygno-data/raw/LNGS/run01234.mid.gz"
TAPE = "file:///tape/raw/LNGS/run01234.mid.gz"
V1 = "0.1.0+aaaaaaaa"
V2 = "0.1.0+bbbbbbbb"


@pytest.fixture
def catalog(db_url):
    cat = Catalog(db_url)
    yield cat
    cat.close()


def _row_stamps(catalog: Catalog, table: str) -> list[tuple]:
    with catalog.engine.connect() as conn:
        return conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY id")).all()


def test_migrations_create_exactly_the_models(catalog):
    assert catalog.revision() == Catalog.head_revision()
    with catalog.engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
        )
    assert diff == []
    Catalog(catalog.url).upgrade()  # a second upgrade is a no-op
    assert catalog.revision() == Catalog.head_revision()


def test_the_logbook_mirror_keeps_its_rows_when_last_modified_goes(db_url):
    """0002: a catalog mirrored with the old change-time column upgrades in place."""
    old = Catalog(db_url, upgrade=False)
    try:
        old.upgrade("0001")
        t0 = dt.datetime(2026, 11, 23, 8, 0)
        with old.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO daq_logbook (run_number, run_description, last_modified, "
                    "mirrored_at) VALUES (7, 'old mirror', :t, :t)"
                ),
                {"t": t0},
            )
        old.upgrade()
        row = old.logbook(7)
        assert (row["run_description"], row["row_hash"]) == ("old mirror", None)
        assert "last_modified" not in row
        assert old.upsert_logbook([{"run_number": 7, "run_description": "old mirror"}]) == 1
        assert old.upsert_logbook([{"run_number": 7, "run_description": "old mirror"}]) == 0
    finally:
        old.close()


def test_raw_file_upsert_is_idempotent_down_to_updated_at(catalog):
    assert catalog.upsert_raw_file(RAW, 1234, "LNGS", 1000, "0a1b2c3d", "f" * 32, 400)
    before = _row_stamps(catalog, "raw_files") + _row_stamps(catalog, "runs")
    assert not catalog.upsert_raw_file(RAW, 1234, "LNGS", 1000, "0a1b2c3d", "f" * 32, 400)
    assert _row_stamps(catalog, "raw_files") + _row_stamps(catalog, "runs") == before

    raw = catalog.raw_file(RAW)
    assert (raw.run, raw.tag, raw.size, raw.adler32, raw.events, raw.state) == (
        1234,
        "LNGS",
        1000,
        "0a1b2c3d",
        400,
        "ingested",
    )
    assert raw.updated_at.tzinfo is not None

    assert catalog.upsert_raw_file(RAW, 1234, "LNGS", events=401)  # None keeps the rest
    changed = catalog.raw_file(RAW)
    assert changed.events == 401 and changed.size == 1000
    assert changed.updated_at > raw.updated_at

    assert catalog.set_raw_state(RAW, "deleted")
    assert not catalog.upsert_raw_file(RAW, 1234, "LNGS", events=401)  # state kept
    assert catalog.raw_file(RAW).state == "deleted"
    with pytest.raises(LookupError):
        catalog.set_raw_state(RAW + ".nope", "deleted")


def test_schema_upgrade_does_not_depend_on_the_working_directory(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    monkeypatch.chdir(tmp_path)
    catalog = Catalog(url)
    try:
        assert catalog.revision() == Catalog.head_revision()
    finally:
        catalog.close()


def test_offline_sql_for_a_dba():
    import io

    from alembic import command

    from cygno.storage.catalog import alembic_config

    config = alembic_config()
    config.set_main_option("sqlalchemy.url", "mysql+pymysql://x@localhost/catalog")
    out = io.StringIO()
    config.output_buffer = out
    command.upgrade(config, "head", sql=True)
    sql = out.getvalue()
    assert "CREATE TABLE runs" in sql and "utf8mb4_bin" in sql and "DATETIME(6)" in sql


def test_keys_are_case_sensitive_on_every_backend(catalog):
    catalog.upsert_raw_file(RAW, 1, "LNGS", 1, "00000001")
    catalog.upsert_raw_file(RAW.replace("LNGS", "lngs"), 1, "lngs", 2, "00000002")
    assert catalog.summary()["runs"] == 2
    assert catalog.raw_file(RAW).size == 1


def test_bad_values_are_refused(catalog):
    with pytest.raises(ValueError):
        catalog.upsert_raw_file(RAW, 1, "LNGS", 1, "ABC")  # adler32 not 8 lower-case hex
    with pytest.raises(ValueError):
        catalog.upsert_raw_file(RAW, 1, "LNGS", state="lost-in-space")
    with pytest.raises(ValueError):
        catalog.upsert_raw_file(RAW, 1, "../etc")
    with pytest.raises(ValueError):
        catalog.upsert_reco_output(1, "LNGS", "bad/version", None, None, 0, 0)
    with pytest.raises(TypeError):
        catalog.upsert_run(1, "LNGS", colour="blue")
    assert catalog.summary()["runs"] == 0


def test_run_fields_and_datetimes_round_trip_without_churn(catalog):
    start = dt.datetime(2026, 11, 23, 10, 0, 0, 123456, tzinfo=dt.UTC)
    assert catalog.upsert_run(1234, "LNGS", pedestal_run=1200, start_time=start, events=400)
    naive_same_instant = start.replace(tzinfo=None)
    assert not catalog.upsert_run(1234, "LNGS", start_time=naive_same_instant)
    rome = dt.timezone(dt.timedelta(hours=1))
    assert not catalog.upsert_run(1234, "LNGS", start_time=start.astimezone(rome))
    run = catalog.run(1234, "LNGS")
    assert run.start_time == start and run.pedestal_run == 1200 and run.events == 400


def test_tape_copy_states_and_timestamps(catalog):
    with pytest.raises(LookupError):
        catalog.record_tape_copy(RAW, TAPE, "0a1b2c3d", 1000, verified=True)
    catalog.upsert_raw_file(RAW, 1234, "LNGS", 1000, "0a1b2c3d")
    t0 = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
    copy = catalog.record_tape_copy(RAW, TAPE, "0a1b2c3d", 1000, verified=True, when=t0)
    assert (copy.state, copy.archived_at, copy.verified_at, copy.raw_uri) == ("ok", t0, t0, RAW)
    before = _row_stamps(catalog, "tape_copies")
    assert catalog.record_tape_copy(RAW, TAPE, "0a1b2c3d", 1000, verified=True, when=t0) == copy
    assert _row_stamps(catalog, "tape_copies") == before  # same facts, same time: untouched
    later = t0 + dt.timedelta(hours=1)
    again = catalog.record_tape_copy(RAW, TAPE, "0a1b2c3d", 1000, verified=True, when=later)
    assert (again.archived_at, again.verified_at) == (t0, later)  # read again: new fact

    with pytest.raises(ValueError, match="audit finding"):
        catalog.mark_tape_copy(TAPE, "ok")  # ok only from bytes read: record_tape_copy

    catalog.mark_tape_copy(TAPE, "missing")
    assert catalog.run(1234, "LNGS").tape_state == "missing"
    t2 = later + dt.timedelta(hours=1)
    rearchived = catalog.record_tape_copy(RAW, TAPE, "0a1b2c3d", 1000, verified=True, when=t2)
    assert (rearchived.state, rearchived.archived_at) == ("ok", t2)

    bad = catalog.record_tape_copy(RAW, TAPE + ".2", "deadbeef", 1000, verified=True)
    assert bad.state == "mismatch"  # read back fine, but not the raw file's adler32
    assert catalog.run(1234, "LNGS").tape_state == "mismatch"
    assert [c.tape_uri for c in catalog.tape_copies(state="mismatch")] == [TAPE + ".2"]
    assert catalog.summary()["tape_copies"] == {"mismatch": 1, "ok": 1}


def test_reco_and_quality_per_version_and_runs_lacking(catalog):
    for run in (1, 2, 3):
        catalog.upsert_raw_file(f"s3://b/raw/LNGS/run{run:05d}.mid.gz", run, "LNGS", 10, "00000001")
    catalog.upsert_raw_file(
        "s3://b/quarantine/LNGS/run00004.mid.gz", 4, "LNGS", state="quarantined"
    )
    catalog.upsert_raw_file("s3://b/raw/LNF/run00001.mid.gz", 1, "LNF", 10, "00000001")
    assert catalog.runs_lacking(V1, "LNGS") == [1, 2, 3]

    assert catalog.upsert_reco_output(1, "LNGS", V1, "aaaaaaaa", "s3://b/reco/x.root", 400, 900)
    stamp = catalog.reco_output(1, "LNGS", V1).updated_at
    assert not catalog.upsert_reco_output(1, "LNGS", V1, "aaaaaaaa", "s3://b/reco/x.root", 400, 900)
    assert catalog.reco_output(1, "LNGS", V1).updated_at == stamp
    catalog.upsert_reco_output(2, "LNGS", V1, "aaaaaaaa", None, None, None, state="failed")
    assert catalog.runs_lacking(V1, "LNGS") == [2, 3]
    assert catalog.runs_lacking(V1, "LNGS", first=3) == [3]
    assert catalog.runs_lacking(V2, "LNGS", last=2) == [1, 2]
    catalog.upsert_reco_output(1, "LNGS", V2, "bbbbbbbb", "s3://b/reco/y.root", 400, 901)
    assert catalog.reco_output(1, "LNGS", V1).clusters == 900  # the old version is untouched

    summary = {"clusters_per_picture": np.float64(2.25), "hist": np.arange(3), "ok": True}
    assert catalog.upsert_quality_report(1, "LNGS", V1, "s3://b/quality/", "good", summary)
    stamp = catalog.quality_report(1, "LNGS", V1).updated_at
    assert not catalog.upsert_quality_report(1, "LNGS", V1, "s3://b/quality/", "good", summary)
    assert catalog.quality_report(1, "LNGS", V1).updated_at == stamp
    catalog.upsert_quality_report(1, "LNGS", V2, None, "warning", {}, reason="few clusters")
    report = catalog.quality_report(1, "LNGS", V1)
    assert report.summary == {"clusters_per_picture": 2.25, "hist": [0, 1, 2], "ok": True}
    with pytest.raises(ValueError):
        catalog.upsert_quality_report(1, "LNGS", V1, None, "excellent", {})

    run1 = catalog.run(1, "LNGS")
    assert run1.reco_versions == (V1, V2)
    assert run1.quality_flag(V1) == "good" and run1.quality_flag(V2) == "warning"
    assert run1.quality_flag() == "warning"
    run4 = catalog.run(4, "LNGS")
    assert run4.raw_state == "quarantined"
    assert [r.run for r in catalog.runs(tag="LNGS")] == [1, 2, 3, 4]
    assert [(r.tag, r.run) for r in catalog.runs(1, 1)] == [("LNF", 1), ("LNGS", 1)]
    summary = catalog.summary()
    assert summary["runs"] == 5
    assert summary["raw_files"] == {"ingested": 4, "quarantined": 1}
    assert summary["reco_outputs"] == {V1: 2, V2: 1}
    assert summary["quality"] == {"good": 1, "warning": 1}


def test_failures_count_up_abandon_and_reset(catalog):
    catalog.upsert_raw_file(RAW, 1234, "LNGS", 10, "00000001")
    first = catalog.record_failure(1234, "LNGS", "reconstruct", "held: memory", abandon_after=3)
    assert (first.count, first.abandoned) == (1, False)
    catalog.record_failure(1234, "LNGS", "reconstruct", "held: memory", abandon_after=3)
    assert not catalog.is_abandoned(1234, "LNGS")
    third = catalog.record_failure(1234, "LNGS", "reconstruct", "segfault", abandon_after=3)
    assert (third.count, third.abandoned, third.message) == (3, True, "segfault")
    assert third.first_failed_at == first.first_failed_at
    assert catalog.is_abandoned(1234, "LNGS")
    assert catalog.is_abandoned(1234, "LNGS", "reconstruct")
    assert not catalog.is_abandoned(1234, "LNGS", "ingest")
    assert catalog.runs_lacking(V1, "LNGS") == []
    assert catalog.runs_lacking(V1, "LNGS", include_abandoned=True) == [1234]
    assert catalog.run(1234, "LNGS").abandoned
    assert catalog.summary()["abandoned_runs"] == 1
    assert [f.step for f in catalog.failures(abandoned=True)] == ["reconstruct"]

    assert catalog.reset(1234, "LNGS") == 1
    assert not catalog.is_abandoned(1234, "LNGS")
    assert catalog.runs_lacking(V1, "LNGS") == [1234]
    assert catalog.record_failure(1234, "LNGS", "reconstruct", "again").count == 1
    assert catalog.abandon(1234, "LNGS", "ingest", "operator: bad HV").abandoned
    assert catalog.reset(1234, "LNGS", "ingest") == 1
    assert catalog.reset(99, "LNGS") == 0


def test_logbook_mirror_compares_row_content(catalog):
    t0 = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)
    rows = [
        {
            "run_number": n,
            "run_description": f"run {n}",
            "GEM1_V": 420.5,
            "HV_STATE": 1,
            "pedestal_run": 0,
            "number_of_events": 400,
            "start_time": t0,
            "stop_time": None if n == 12 else t0 + dt.timedelta(minutes=n),
            "a_column_we_do_not_mirror": "ignored",
        }
        for n in (10, 11, 12)
    ]
    assert catalog.logbook_progress() == (None, [])
    assert catalog.upsert_logbook(rows) == 3
    assert catalog.upsert_logbook(rows) == 0
    assert catalog.logbook(11)["GEM1_V"] == 420.5
    assert catalog.logbook(11)["start_time"] == t0
    mirrored_at = catalog.logbook(11)["mirrored_at"]
    assert catalog.logbook_progress() == (12, [12])  # run 12 is still open
    changed = {**rows[1], "run_description": "HV trip"}
    assert catalog.upsert_logbook([changed, rows[0]]) == 1
    assert catalog.logbook(11)["run_description"] == "HV trip"
    assert catalog.logbook(11)["mirrored_at"] > mirrored_at
    assert catalog.logbook(10)["mirrored_at"] == mirrored_at
    assert catalog.upsert_logbook([{**rows[0], "a_column_we_do_not_mirror": "other"}]) == 0
    assert catalog.logbook(99) is None
    assert catalog.summary()["logbook_rows"] == 3
    with pytest.raises(ValueError):
        catalog.upsert_logbook([{"run_description": "no number"}])


def test_concurrent_upserts_of_the_same_key_never_duplicate(catalog):
    errors = []

    def writer(i: int) -> None:
        try:
            for run in range(5):
                uri = f"s3://b/raw/LNGS/run{run:05d}.mid.gz"
                catalog.upsert_raw_file(uri, run, "LNGS", 100, "00000001")
                catalog.upsert_reco_output(run, "LNGS", V1, "h", None, run, i)
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    summary = catalog.summary()
    assert summary["runs"] == 5
    assert summary["raw_files"] == {"ingested": 5}
    assert summary["reco_outputs"] == {V1: 5}


def test_cli_prints_runs_with_raw_tape_reco_and_quality_state(tmp_path):
    from typer.testing import CliRunner

    from cygno.cli import _register, app

    _register()  # every command group, as `cygno` itself does

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    catalog = Catalog(url)
    catalog.upsert_raw_file(RAW, 1234, "LNGS", 1_500_000, "0a1b2c3d", None, 400)
    catalog.record_tape_copy(RAW, TAPE, "0a1b2c3d", 1_500_000, verified=True)
    catalog.upsert_reco_output(1234, "LNGS", V1, "aaaaaaaa", "s3://b/r.root", 400, 812)
    catalog.upsert_quality_report(1234, "LNGS", V1, None, "good", {})
    catalog.upsert_raw_file(
        "s3://b/quarantine/LNGS/run01235.mid.gz", 1235, "LNGS", state="quarantined"
    )
    catalog.record_failure(1235, "LNGS", "ingest", "truncated event", abandon_after=1)

    result = CliRunner().invoke(app, ["catalog", "--url", url], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    lines = {line.split()[1]: line for line in result.output.splitlines() if "│ 0123" in line}
    assert "ingested" in lines["01234"] and "ok" in lines["01234"]
    assert V1 in lines["01234"] and "good" in lines["01234"] and "1.5 MB" in lines["01234"]
    assert "quarantined" in lines["01235"] and "abandoned" in lines["01235"]
    abandoned = next(line for line in result.output.splitlines() if "abandoned runs" in line)
    assert abandoned.split()[-2:] == ["1", "│"]

    only = CliRunner().invoke(app, ["catalog", "--url", url, "--first", "1235"])
    assert "01234" not in only.output and "01235" in only.output

    reset = CliRunner().invoke(app, ["catalog", "reset", "1235", "--tag", "LNGS", "--url", url])
    assert reset.exit_code == 0, reset.output
    assert "cleared 1" in reset.output
    assert not catalog.is_abandoned(1235, "LNGS")
    catalog.close()


def _statements(catalog: Catalog) -> list[str]:
    """Every query the catalog's engine runs from now on (not BEGIN/COMMIT)."""
    seen: list[str] = []

    def record(_conn, _cursor, sql: str, *_args) -> None:
        if sql.lstrip().upper().startswith("SELECT"):
            seen.append(sql)

    sa.event.listen(catalog.engine, "before_cursor_execute", record)
    return seen


def test_reference_runs_and_trend_points_ask_only_for_what_they_need(catalog):
    kinds = {1: "fe55", 2: "cosmics", 3: "fe55", 4: "fe55", 5: "fe55", 6: "fe55"}
    flags = {1: "good", 2: "good", 3: "bad", 4: "good", 5: "good", 6: "good"}
    for run, kind in kinds.items():
        catalog.upsert_run(run, "LNGS", run_type=kind)
        catalog.upsert_run(run, "LNF", run_type=kind)
        for tag in ("LNGS", "LNF"):
            catalog.upsert_quality_report(run, tag, V1, None, flags[run], {"run": run, "t": tag})
        catalog.upsert_quality_report(run, "LNGS", V2, None, "good", {"run": run, "v": 2})
    catalog.upsert_run(7, "LNGS")  # no run type: its references have none either
    catalog.upsert_run(8, "LNGS")
    catalog.upsert_quality_report(7, "LNGS", V1, None, "good", {})

    statements = _statements(catalog)
    # earlier, same tag and run type, good for this version; latest first, at most `limit`
    assert catalog.reference_runs(6, "LNGS", V1) == [5, 4, 1]
    assert catalog.reference_runs(6, "LNGS", V1, limit=1) == [5]
    assert catalog.reference_runs(3, "LNGS", V1) == [1]
    assert catalog.reference_runs(2, "LNGS", V1) == []  # run 1 is of another kind
    assert catalog.reference_runs(8, "LNGS", V1) == [7]
    assert catalog.reference_runs(1, "LNGS", V1) == []
    assert len(statements) == 2 * 6  # the run's type, then the candidates: nothing per row

    del statements[:]
    points = catalog.trend_points("LNGS", V1)
    assert points == [{"run": r, "t": "LNGS"} for r in kinds]  # run 7's empty summary is no point
    assert catalog.trend_points("LNGS", V2) == [{"run": r, "v": 2} for r in kinds]
    assert catalog.trend_points("MAN", V1) == []
    assert len(statements) == 3
