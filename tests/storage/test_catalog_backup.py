"""Catalog dumps: round trips that compare every table on SQLite, MariaDB and PostgreSQL,
a SQLite dump restored into PostgreSQL and MariaDB, refusals, damage, retention."""

from __future__ import annotations

import datetime as dt
import gzip
import json

import pytest
import sqlalchemy as sa

from cygno.storage.catalog import Catalog
from cygno.storage.catalog.backup import (
    MANIFEST,
    RestoreError,
    apply_retention,
    column_kind,
    dump_catalog,
    expired_dumps,
    list_dumps,
    restore_catalog,
)
from cygno.storage.catalog.models import Base
from cygno.storage.catalog.sql import dispose_engine, engine_for
from cygno.storage.objectstore import ObjectStore
from tests.conftest import fresh_database

T0 = dt.datetime(2026, 11, 23, 8, 0, 0, 123456, tzinfo=dt.UTC)
V1 = "0.1.0+aaaaaaaa"


def _fill(catalog: Catalog) -> None:
    """Rows in every table, with microseconds, unicode, JSON, NULLs and booleans."""
    for n in (1, 2, 3):
        raw = f"s3://cygno-data/raw/LNGS/run{n:05d}.mid.gz"
        catalog.upsert_run(n, "LNGS", pedestal_run=0, run_type="S-data", events=400,
                           start_time=T0 + dt.timedelta(minutes=n))  # fmt: skip
        catalog.upsert_raw_file(raw, n, "LNGS", 10**10 + n, f"0a1b2c{n:02x}", "d4" * 16, 401,
                                pictures=400)  # fmt: skip
        catalog.record_tape_copy(raw, f"file:///tape/run{n:05d}.mid.gz", f"0a1b2c{n:02x}",
                                 10**10 + n, verified=True, when=T0)  # fmt: skip
        catalog.upsert_reco_output(n, "LNGS", V1, "cafe", f"s3://x/reco_{n}.root", 400, 57)
        summary = {"light_yield": 1.25, "bins": [1, 2], "m": {"a": None}}
        catalog.upsert_quality_report(n, "LNGS", V1, None, "good", summary)
    catalog.record_failure(2, "LNGS", "reconstruct", "job held: memory ✗", abandon_after=1)
    rows = [
        {"run_number": n, "run_description": f"⁵⁵Fe run {n}, «ünïcode»", "GEM1_V": 420.5,
         "HV_STATE": 1, "start_time": T0, "stop_time": None if n == 3 else T0}
        for n in (1, 2, 3)
    ]  # fmt: skip
    catalog.upsert_logbook(rows)


_SAMPLE = {"int": 7, "float": 2.5, "str": "x", "datetime": T0, "date": T0.date(),
           "bool": True, "json": [{"kind": "tape", "uri": "file:///tape/old"}]}  # fmt: skip


def _fill_the_rest(url: str) -> None:
    """One row of sample values in every table the API calls above left empty (tables
    other work adds later are covered too); foreign keys point at row 1."""
    with engine_for(url).begin() as connection:
        for table in Base.metadata.sorted_tables:
            if connection.execute(sa.select(sa.func.count()).select_from(table)).scalar():
                continue
            row = {
                c.name: 1 if c.foreign_keys else _SAMPLE[column_kind(c)]
                for c in table.columns
                if not c.primary_key
            }
            connection.execute(table.insert(), [row])


def _tables(url: str) -> dict[str, list[dict]]:
    """Every catalog table's rows in primary-key order, as the models read them."""
    with engine_for(url).connect() as connection:
        return {
            table.name: [
                dict(row)
                for row in connection.execute(
                    sa.select(table).order_by(*table.primary_key.columns)
                ).mappings()
            ]
            for table in Base.metadata.sorted_tables
        }


@pytest.fixture
def store(tmp_path) -> ObjectStore:
    return ObjectStore(f"file://{tmp_path / 'store'}")


@pytest.fixture
def s3_store(s3_server) -> ObjectStore:
    return ObjectStore(f"s3://{s3_server.new_bucket()}", s3_server.storage_options())


def _round_trip(source: str, target: str, store: ObjectStore) -> dict[str, list[dict]]:
    catalog = Catalog(source)
    _fill(catalog)
    _fill_the_rest(source)
    dump = dump_catalog(source, store)
    assert set(dump.rows) == {t.name for t in Base.metadata.sorted_tables}
    assert all(dump.rows.values()), dump.rows  # every table has rows to compare
    restored = restore_catalog(store, dump.key, target)
    assert restored == dump.rows
    before, after = _tables(source), _tables(target)
    assert after == before
    # the restored catalog is a working catalog: new rows get new ids
    again = Catalog(target)
    assert again.upsert_run(4, "LNGS", events=1)
    assert again.run(4, "LNGS").events == 1
    assert again.revision() == Catalog.head_revision()
    for url in (source, target):
        dispose_engine(url)
    return before


def test_round_trip_compares_every_table(db_url, tmp_path, s3_store):
    backend = sa.make_url(db_url).get_backend_name()
    name = {"postgresql": "postgres", "mysql": "mariadb"}.get(backend, backend)
    with fresh_database(name, tmp_path) as target:
        _round_trip(db_url, target, s3_store)


@pytest.mark.parametrize("backend", ["postgres", "mariadb"])
def test_a_sqlite_dump_restores_into_a_server_database(backend, tmp_path, store):
    with fresh_database(backend, tmp_path) as target:
        rows = _round_trip(f"sqlite:///{tmp_path / 'source.db'}", target, store)
    assert rows["daq_logbook"][0]["run_description"] == "⁵⁵Fe run 1, «ünïcode»"
    assert rows["runs"][0]["start_time"] == T0 + dt.timedelta(minutes=1)


def test_restore_refuses_a_database_that_is_not_empty(tmp_path, store):
    source = f"sqlite:///{tmp_path / 'source.db'}"
    _fill(Catalog(source))
    dump = dump_catalog(source, store)
    with pytest.raises(RestoreError, match=r"is not empty: table \w+ holds \d+ rows"):
        restore_catalog(store, dump.key, source)


def test_a_damaged_dump_restores_nothing(tmp_path, store):
    source = f"sqlite:///{tmp_path / 'source.db'}"
    _fill(Catalog(source))
    dump = dump_catalog(source, store)
    part = f"{dump.key}/daq_logbook.jsonl.gz"
    lines = gzip.decompress(store.get_bytes(part)).splitlines()
    store.put_bytes(part, gzip.compress(b"\n".join(lines[:-1]) + b"\n"))
    target = f"sqlite:///{tmp_path / 'target.db'}"
    with pytest.raises(RestoreError, match=r"adler32 .* manifest says .* nothing restored"):
        restore_catalog(store, dump.key, target)
    assert not any(_tables(target).values())
    store.delete(f"{dump.key}/{MANIFEST}")
    with pytest.raises(RestoreError, match="not a complete dump"):
        restore_catalog(store, dump.key, target)


def test_dump_is_gzip_json_lines_with_a_manifest(tmp_path, store):
    source = f"sqlite:///{tmp_path / 'source.db'}"
    _fill(Catalog(source))
    dump = dump_catalog(source, store)
    manifest = json.loads(store.get_bytes(f"{dump.key}/{MANIFEST}"))
    assert manifest["revision"] == Catalog.head_revision()
    assert manifest["source_backend"] == "sqlite"
    runs = manifest["tables"]["runs"]
    assert runs["rows"] == 3 and runs["columns"]["start_time"] == "datetime"
    part = gzip.decompress(store.get_bytes(f"{dump.key}/runs.jsonl.gz"))
    first = json.loads(part.splitlines()[0])
    assert first["start_time"] == "2026-11-23T08:01:00.123456+00:00"


def test_retention_keeps_the_newest_of_recent_days_and_weeks():
    stamps = [dt.datetime(2026, 11, 1, h, tzinfo=dt.UTC) + dt.timedelta(days=d)
              for d in range(30) for h in (1, 13)]  # fmt: skip
    expired = set(expired_dumps(stamps, keep_daily=7, keep_weekly=4))
    kept = sorted(set(stamps) - expired)
    newest_days = [dt.datetime(2026, 11, 24 + d, 13, tzinfo=dt.UTC) for d in range(7)]
    assert set(newest_days) <= set(kept)
    # 30 Nov 2026 is a Monday: of the 4 newest ISO weeks, the current one and the one
    # before end inside the 7 days; the 2 weeks before that keep their Sunday's dump
    older = [k for k in kept if k not in newest_days]
    assert older == [dt.datetime(2026, 11, d, 13, tzinfo=dt.UTC) for d in (15, 22)]
    assert all(k.hour == 13 for k in kept)


def test_apply_retention_deletes_expired_and_stale_incomplete_dumps(tmp_path, store):
    source = f"sqlite:///{tmp_path / 'source.db'}"
    Catalog(source).upsert_run(1, "LNGS")
    days = [T0 + dt.timedelta(days=d) for d in range(5)]
    for day in days:
        dump_catalog(source, store, now=day)
    crashed = f"backups/catalog/{(T0 - dt.timedelta(days=1)).strftime('%Y%m%dT%H%M%SZ')}"
    store.put_bytes(f"{crashed}/runs.jsonl.gz", b"half")
    deleted = apply_retention(store, keep_daily=2, keep_weekly=0)
    assert len(deleted) == 4 and crashed in deleted
    assert [d.created_at for d in list_dumps(store)] == days[-2:]
    assert not store.list(crashed)
    with pytest.raises(ValueError):
        apply_retention(store, keep_daily=0, keep_weekly=0)


def test_cli_backup_lists_and_restores(tmp_path, store):
    from typer.testing import CliRunner

    from cygno.cli import _register, app

    _register()
    source, target = (f"sqlite:///{tmp_path / name}" for name in ("source.db", "target.db"))
    _fill(Catalog(source))
    where = ["--store", store.url]
    made = CliRunner().invoke(app, ["catalog", "backup", "--url", source, *where])
    assert made.exit_code == 0, made.output
    (dump,) = list_dumps(store)
    assert store.uri(dump.key) in made.output.replace("\n", "")
    listed = CliRunner().invoke(app, ["catalog", "backups", *where])
    assert dump.key.rsplit("/", 1)[1] in listed.output
    stamp = dump.key.rsplit("/", 1)[1]
    restored = CliRunner().invoke(app, ["catalog", "restore", stamp, "--url", target, *where])
    assert restored.exit_code == 0, restored.output
    assert _tables(target) == _tables(source)
