"""tape-reconcile: a deleted tape copy is re-archived, a corrupted one flagged, never
overwritten; too many missing copies wait for a human."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from cygno.flows.tape_reconcile import tape_reconcile
from cygno.storage.checksum import adler32_of
from cygno.tasks.ingest import ingest
from cygno.tasks.tape import archive_to_tape
from tests.flows.harness import artifact


def _ingest_and_archive(plat, runs):
    for run in runs:
        archive_to_tape.fn(ingest.fn(plat.store.uri(run.key)))


def _tape_file(plat, key: str) -> Path:
    return Path(urlparse(plat.tape.uri(key)).path)


def test_reconcile_rearchives_a_deleted_copy_and_flags_a_corrupted_one(plat):
    _, lost, corrupt, fine = plat.simulate(runs=3, events=2)
    _ingest_and_archive(plat, (lost, corrupt, fine))
    plat.tape.delete(lost.key)
    path = _tape_file(plat, corrupt.key)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))

    state = tape_reconcile(max_rearchive_fraction=0.5, return_state=True)

    assert state.is_failed() and "mismatch" in state.message
    assert plat.tape.verify(lost.key, lost.checksums.adler32)
    (copy,) = plat.catalog.tape_copies(raw_uri=plat.store.uri(lost.key))
    assert copy.state == "ok"
    (flagged,) = plat.catalog.tape_copies(raw_uri=plat.store.uri(corrupt.key))
    assert flagged.state == "mismatch"
    assert path.read_bytes() == bytes(data)  # never overwritten
    assert adler32_of(path) != corrupt.checksums.adler32
    (good,) = plat.catalog.tape_copies(raw_uri=plat.store.uri(fine.key))
    assert good.state == "ok"
    table = str(artifact("tape-reconcile")["data"])
    assert corrupt.key in table and "mismatch" in table
    assert lost.key in table and "rearchived" in table


def test_mass_disappearance_is_left_to_a_human(plat):
    _, a, b = plat.simulate(runs=2, events=2)
    _ingest_and_archive(plat, (a, b))
    plat.tape.delete(a.key)
    plat.tape.delete(b.key)

    state = tape_reconcile(max_rearchive_fraction=0.05, return_state=True)

    assert state.is_failed() and "held-back" in state.message
    assert plat.tape.state(a.key) == "missing" and plat.tape.state(b.key) == "missing"


def test_dark_files_are_reported_not_touched(plat):
    _, a = plat.simulate(runs=1, events=2)  # the pedestal run is never catalogued: dark
    _ingest_and_archive(plat, (a,))

    state = tape_reconcile(return_state=True)

    assert state.is_completed(), state.message
    assert "dark-disk" in state.message
    assert plat.tape.state("raw/LNGS/run00001.mid.gz") == "missing"
