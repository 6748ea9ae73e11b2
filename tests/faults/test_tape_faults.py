"""Tape corruption and loss: a copy is called ok only from bytes just read back.

A flipped byte on tape leaves the endpoint's namespace checksum unchanged, so nothing
that only asks the namespace may clear a mismatch; copies gone from tape are "missing"
in the catalog, not ok; a re-archive is a new verification with its own time.
"""

from __future__ import annotations

import io
from pathlib import Path
from urllib.parse import urlparse

from cygno.flows.process_run import process_run
from cygno.flows.tape_reconcile import tape_reconcile
from cygno.storage.checksum import adler32_of
from cygno.tasks.ingest import ingest
from cygno.tasks.tape import archive_to_tape


def _archived(plat, runs):
    for run in runs:
        archive_to_tape.fn(ingest.fn(plat.store.uri(run.key)))


def _flip_on_tape(plat, key: str) -> bytes:
    path = Path(urlparse(plat.tape.uri(key)).path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    return bytes(data)


def _copy(plat, key: str):
    (copy,) = plat.catalog.tape_copies(raw_uri=plat.store.uri(key))
    return copy


def test_a_mismatched_copy_stays_mismatched_until_its_bytes_read_back_good(plat):
    (run,) = plat.simulate(runs=0)  # a pedestal run: process-run has nothing to reconstruct
    _archived(plat, [run])
    flipped = _flip_on_tape(plat, run.key)
    assert plat.tape.checksum(run.key) == run.checksums.adler32  # the namespace cannot tell

    state = tape_reconcile(return_state=True)
    assert state.is_failed() and "mismatch" in state.message
    marked = _copy(plat, run.key)
    assert marked.state == "mismatch"

    rerun = process_run(plat.store.uri(run.key), return_state=True)  # a rerun of the run
    assert rerun.is_failed() and "does not read back" in rerun.message
    assert _copy(plat, run.key) == marked  # not ok, verified_at untouched

    namespace_only = tape_reconcile(read_back=False, return_state=True)
    assert namespace_only.is_failed() and "mismatch" in namespace_only.message
    assert _copy(plat, run.key) == marked

    tape_path = Path(urlparse(plat.tape.uri(run.key)).path)
    assert tape_path.read_bytes() == flipped  # never overwritten
    assert adler32_of(plat.store.open(run.key)) == run.checksums.adler32  # raw intact


def test_namespace_agreement_alone_never_calls_a_copy_ok(plat):
    _, run = plat.simulate(runs=1, events=2)
    _archived(plat, [run])
    before = _copy(plat, run.key)
    state = tape_reconcile(read_back=False, return_state=True)
    assert state.is_completed() and "listed" in state.message and "'ok'" not in state.message
    assert _copy(plat, run.key).verified_at == before.verified_at


def test_copies_lost_everywhere_are_not_ok_and_a_rearchive_is_a_new_verification(plat):
    _, lost, gone, fine = plat.simulate(runs=3, events=2)
    _archived(plat, [lost, gone, fine])
    first = _copy(plat, lost.key)
    plat.tape.delete(lost.key)
    plat.tape.delete(gone.key)
    gone_bytes = plat.store.get_bytes(gone.key)
    plat.store.delete(gone.key)  # and gone from raw/: lost everywhere

    state = tape_reconcile(max_rearchive_fraction=0.5, return_state=True)

    assert state.is_failed() and "lost-everywhere" in state.message
    assert _copy(plat, gone.key).state == "missing"
    assert plat.catalog.run(gone.run_number, "LNGS").tape_state == "missing"
    again = _copy(plat, lost.key)
    assert again.state == "ok" and plat.tape.verify(lost.key, lost.checksums.adler32)
    assert again.verified_at > first.verified_at and again.archived_at > first.archived_at
    assert _copy(plat, fine.key).state == "ok"
    assert adler32_of(io.BytesIO(gone_bytes)) == gone.checksums.adler32  # the test kept them


def test_copies_held_back_by_the_threshold_are_missing_not_ok(plat):
    _, a, b = plat.simulate(runs=2, events=2)
    _archived(plat, [a, b])
    plat.tape.delete(a.key)
    plat.tape.delete(b.key)
    state = tape_reconcile(max_rearchive_fraction=0.05, return_state=True)
    assert state.is_failed() and "held-back" in state.message
    assert {_copy(plat, r.key).state for r in (a, b)} == {"missing"}
