"""Quarantine never overwrites, and two runs racing on one corrupt file end with one
quarantined copy, one reason and a clear message each (no raw FileNotFoundError)."""

from __future__ import annotations

import json
import threading

import pytest

from cygno.storage import keys
from cygno.tasks import resources
from cygno.tasks.ingest import CorruptRawFile, NoSuchRawFile, ingest

KEY = keys.raw_key("LNGS", 31)


def _reasons(store) -> dict[str, dict]:
    return {
        k: json.loads(store.get_bytes(k)) for k in store.list("quarantine/") if k.endswith(".json")
    }


def test_a_second_corrupt_upload_never_overwrites_the_first(store):
    uploads = [b"first corrupt upload", b"second, different corrupt upload", b"third"]
    for data in uploads:
        store.put_bytes(KEY, data)
        with pytest.raises(CorruptRawFile):
            ingest.fn(store.uri(KEY))
    targets = [keys.quarantine_key(KEY, version=v) for v in (1, 2, 3)]
    assert [store.get_bytes(t) for t in targets] == uploads  # every byte kept
    reasons = _reasons(store)
    assert sorted(reasons) == sorted(keys.quarantine_reason_key(t) for t in targets)
    assert [reasons[keys.quarantine_reason_key(t)]["size"] for t in targets] == [
        len(d) for d in uploads
    ]
    rows = {r.uri: r for r in resources.catalog().raw_files(state="quarantined")}
    assert sorted(rows) == sorted(store.uri(t) for t in targets)


def test_two_runs_racing_on_one_corrupt_file(store):
    data = b"\x1f\x8b" + bytes(5000)  # a gzip magic and nothing valid after it
    for _ in range(5):  # a few rounds: the interleaving differs each time
        store.put_bytes(KEY, data)
        start, errors = threading.Barrier(2), []

        def run(start: threading.Barrier, errors: list) -> None:
            start.wait()
            try:
                ingest.fn(store.uri(KEY))
            except Exception as exc:
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(start, errors)) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        kinds = sorted(type(e).__name__ for e in errors)
        assert kinds in (["CorruptRawFile", "NoSuchRawFile"], ["CorruptRawFile"] * 2), errors
        for error in errors:
            assert isinstance(error, CorruptRawFile | NoSuchRawFile)
            assert KEY in str(error) and "quarantine" in str(error)
    quarantined = [k for k in store.list("quarantine/") if not k.endswith(".json")]
    assert not store.exists(KEY)
    assert all(store.get_bytes(k) == data for k in quarantined)
    assert len(_reasons(store)) == len(quarantined)
