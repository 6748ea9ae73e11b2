"""The local HSM emulator: archive with read-back, migration and recall, verify, listing."""

from __future__ import annotations

import os
import time
import zlib

import pytest

from cygno.storage.objectstore import ObjectStore
from cygno.storage.tape import (
    LocalHsm,
    TapeChecksumError,
    TapeConflictError,
    TapeOfflineError,
)

KEY = "raw/LNGS/run01234.mid.gz"


@pytest.fixture
def store(tmp_path) -> ObjectStore:
    return ObjectStore((tmp_path / "store").as_uri())


@pytest.fixture
def tape(tmp_path) -> LocalHsm:
    return LocalHsm((tmp_path / "tape").as_uri(), recall_seconds=0.2)


@pytest.fixture
def data(store) -> bytes:
    payload = os.urandom(200_000)
    store.put_bytes(KEY, payload)
    return payload


def _adler(data: bytes) -> str:
    return f"{zlib.adler32(data):08x}"


def test_archive_copies_reads_back_and_returns_the_tape_copy(store, tape, data, tmp_path):
    copy = tape.archive(store, KEY)
    assert copy.adler32 == _adler(data) and copy.size == len(data)
    assert copy.uri == (tmp_path / "tape" / KEY).as_uri()
    assert tape.key_of(copy.uri) == KEY
    assert (tmp_path / "tape" / KEY).read_bytes() == data
    assert tape.state(KEY) == "disk"
    assert tape.checksum(KEY) == copy.adler32
    assert tape.verify(KEY, copy.adler32)
    assert not tape.verify(KEY, "00000001")
    assert tape.state("raw/LNGS/run09999.mid.gz") == "missing"
    assert not tape.verify("raw/LNGS/run09999.mid.gz", copy.adler32)


def test_archive_is_idempotent_and_never_overwrites_a_different_file(store, tape, data):
    first = tape.archive(store, KEY)
    assert tape.archive(store, KEY, expected_adler32=first.adler32) == first
    assert tape.archive(store, KEY) == first  # same bytes again: fine
    store.put_bytes(KEY, b"a different file under the same name")
    with pytest.raises(TapeConflictError, match="refusing to overwrite"):
        tape.archive(store, KEY)
    with pytest.raises(TapeChecksumError, match="catalog expects"):
        tape.archive(store, KEY, expected_adler32="0badf00d")
    assert tape.verify(KEY, first.adler32)  # the original copy is untouched
    assert [e.key for e in tape.list()] == [KEY]  # and no temp debris is listed


def test_migrated_files_need_a_recall_that_takes_time(store, tape, data):
    tape.archive(store, KEY)
    assert tape.migrate(older_than=3600) == []  # too young for the migration policy
    assert tape.migrate() == [KEY]
    assert tape.state(KEY) == "migrated"
    with pytest.raises(TapeOfflineError):
        tape.open(KEY)

    store.delete(KEY)  # the raw file left S3; reprocessing needs it back
    started = time.monotonic()
    sums = tape.recall(KEY, store)
    assert time.monotonic() - started >= tape.recall_seconds
    assert store.get_bytes(KEY) == data
    assert sums.adler32 == _adler(data) and sums.size == len(data)
    assert tape.state(KEY) == "disk"  # staged copy stays on the buffer…

    started = time.monotonic()
    tape.recall(KEY, store, dest_key="staging/recalled.mid.gz")  # …so no second wait
    assert time.monotonic() - started < tape.recall_seconds
    assert tape.migrate() == [KEY]  # until the HSM migrates it again
    assert tape.state(KEY) == "migrated"


def test_verify_detects_a_corrupted_tape_copy_even_when_migrated(store, tape, data, tmp_path):
    copy = tape.archive(store, KEY)
    tape.migrate()
    path = tmp_path / "tape" / KEY
    corrupted = bytearray(path.read_bytes())
    corrupted[1000] ^= 0xFF
    path.write_bytes(bytes(corrupted))
    assert not tape.verify(KEY, copy.adler32)  # staged, read, compared
    with pytest.raises(TapeChecksumError):
        tape.recall(KEY, store, dest_key="staging/bad.mid.gz")
    assert not store.exists("staging/bad.mid.gz")  # nothing half-published


def test_delete_then_rearchive(store, tape, data):
    tape.archive(store, KEY)
    tape.delete(KEY)
    assert tape.state(KEY) == "missing"
    assert tape.checksum(KEY) is None
    copy = tape.archive(store, KEY)
    assert tape.verify(KEY, copy.adler32)


def test_list_shows_state_size_and_namespace_checksum(store, tape, data):
    store.put_bytes("raw/LNGS/run01235.mid.gz", b"second")
    store.put_bytes("raw/LNF/run00001.mid.gz", b"third")
    for key in store.list("raw/"):
        tape.archive(store, key)
    tape.migrate()
    store.put_bytes("raw/LNGS/run01236.mid.gz", b"fourth")
    tape.archive(store, "raw/LNGS/run01236.mid.gz")
    entries = {e.key: e for e in tape.list()}
    assert sorted(entries) == sorted(store.list("raw/"))
    assert entries["raw/LNGS/run01236.mid.gz"].state == "disk"
    assert entries[KEY].state == "migrated"
    assert entries[KEY].size == len(data)
    assert entries[KEY].adler32 == _adler(data)
    assert entries[KEY].archived_at is not None
    assert [e.key for e in tape.list("raw/LNF/")] == ["raw/LNF/run00001.mid.gz"]


def test_keys_are_validated(tape):
    for key in ("../x", "/abs", "raw//x", "davs://host/x"):
        with pytest.raises(ValueError):
            tape.state(key)


def test_the_hsm_records_live_outside_the_tape_namespace(store, tape, data, tmp_path):
    tape.archive(store, KEY)
    tape.migrate()
    on_tape = sorted(p.relative_to(tmp_path / "tape") for p in (tmp_path / "tape").rglob("*"))
    assert [str(p) for p in on_tape] == ["raw", "raw/LNGS", KEY]
    assert (tmp_path / "tape.hsm" / f"{KEY}.json").is_file()
    elsewhere = LocalHsm((tmp_path / "t2").as_uri(), 0.0, state_url=(tmp_path / "db").as_uri())
    elsewhere.archive(store, KEY)
    assert (tmp_path / "db" / f"{KEY}.json").is_file()


def test_archive_from_s3_into_tape(s3_server, tape):
    store = ObjectStore(f"s3://{s3_server.new_bucket()}", s3_server.storage_options())
    payload = os.urandom(50_000)
    store.put_bytes(KEY, payload)
    copy = tape.archive(store, KEY)
    assert copy.adler32 == _adler(payload)
    tape.migrate()
    store.delete(KEY)
    tape.recall(KEY, store)
    assert store.get_bytes(KEY) == payload


def test_the_tape_endpoint_can_be_any_fsspec_url(s3_server, store, data):
    """Same HSM behaviour on a remote endpoint (here S3), not just a local directory."""
    bucket = s3_server.new_bucket()
    tape = LocalHsm(f"s3://{bucket}/tape", 0.05, s3_server.storage_options())
    copy = tape.archive(store, KEY)
    assert copy.uri == f"s3://{bucket}/tape/{KEY}"
    assert tape.migrate() == [KEY]
    assert tape.state(KEY) == "migrated"
    store.delete(KEY)
    assert tape.recall(KEY, store).adler32 == copy.adler32
    assert [(e.key, e.state) for e in tape.list()] == [(KEY, "disk")]
    with pytest.raises(ValueError, match="state_url"):  # no sibling of a bucket
        LocalHsm(f"s3://{bucket}", 0.05, s3_server.storage_options())


def test_rename_moves_the_file_and_its_record_never_over_a_file(store, tape, data):
    copy = tape.archive(store, KEY)
    tape.migrate()
    kept = "superseded/LNGS/run01234/v1/" + KEY
    tape.rename(KEY, kept)
    assert tape.state(KEY) == "missing"
    assert (tape.state(kept), tape.checksum(kept)) == ("migrated", copy.adler32)
    tape.archive(store, KEY)
    with pytest.raises(TapeConflictError):
        tape.rename(KEY, kept)
    with pytest.raises(FileNotFoundError):
        tape.rename("raw/LNGS/run09999.mid.gz", "elsewhere/x")
