"""ingest's function on real files (store and catalog under tmp_path, no server)."""

from __future__ import annotations

import json

import pytest

from cygno.reco.simulate.run import simulate_run
from cygno.storage import keys
from cygno.tasks import resources
from cygno.tasks.ingest import CorruptRawFile, NoSuchRawFile, _retry_if_transient, ingest


def _upload(store, run: int, cut: float | None = None) -> str:
    key = keys.raw_key("LNGS", run)
    with store.publish(key) as out:
        simulate_run(out, run, 3, "fe55", shape=(128, 128), write_truth=False)
    if cut is not None:
        data = store.get_bytes(key)
        store.put_bytes(key, data[: int(len(data) * cut)])
    return key


def test_a_good_file_is_catalogued_once(store):
    key = _upload(store, 5)
    raw = ingest.fn(store.uri(key))
    assert (raw.run, raw.tag, raw.pictures) == (5, "LNGS", 3)
    assert raw.adler32 == store.checksum(key).adler32 and raw.size == store.size(key)
    row = resources.catalog().raw_file(store.uri(key))
    assert row.state == "ingested" and row.md5 == store.checksum(key).md5
    assert ingest.fn(key) == raw  # a store key works too, and the second call reads nothing


def test_a_truncated_file_is_quarantined_with_its_reason(store):
    key = _upload(store, 6, cut=0.5)
    with pytest.raises(CorruptRawFile, match=r"quarantine/LNGS/run00006\.mid\.gz") as caught:
        ingest.fn(store.uri(key))
    target = keys.quarantine_key(key)
    assert not store.exists(key) and store.exists(target)
    reason = json.loads(store.get_bytes(keys.quarantine_reason_key(target)))
    assert reason["reason"] in str(caught.value) and reason["defects"]
    assert resources.catalog().raw_file(store.uri(target)).state == "quarantined"
    with pytest.raises(NoSuchRawFile, match="already quarantined"):
        ingest.fn(store.uri(key))  # a late duplicate notification: not the run's fault


def test_missing_and_corrupt_files_are_not_retried(store):
    class State:
        def __init__(self, exc):
            self.exc = exc

        def result(self):
            raise self.exc

    assert not _retry_if_transient(None, None, State(CorruptRawFile("x")))
    assert not _retry_if_transient(None, None, State(NoSuchRawFile("x")))
    assert _retry_if_transient(None, None, State(OSError("connection reset")))
    with pytest.raises(ValueError):
        ingest.fn(store.uri("quality/x.json"))  # not a raw key
