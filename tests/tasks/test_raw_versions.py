"""A raw file uploaded again: same content changes nothing, other content (even of the
same size) is the next version of the raw file, with what the earlier one made kept."""

from __future__ import annotations

import pytest

from cygno.reco.simulate.run import simulate_run
from cygno.settings import get_settings
from cygno.storage import keys
from cygno.tasks import resources
from cygno.tasks.ingest import ingest
from cygno.tasks.tape import archive_to_tape

RUN = 21
KEY = keys.raw_key("LNGS", RUN, suffix=".mid")  # uncompressed: every seed, the same size


@pytest.fixture
def store(db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("CYGNO_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CYGNO_STORE_URL", (tmp_path / "store").as_uri())
    monkeypatch.setenv("CYGNO_CATALOG_URL", db_url)
    monkeypatch.setenv("CYGNO_TAPE_URL", (tmp_path / "tape").as_uri())
    get_settings.cache_clear()
    yield resources.store()
    resources.catalog().close()
    get_settings.cache_clear()


def _upload(store, seed: int) -> None:
    with store.publish(KEY) as out:
        simulate_run(out, RUN, 2, "fe55", (64, 64), seed, compression=None, write_truth=False)


def _correct(store) -> None:
    """The same run with one sample changed: other content, same size, still valid."""
    data = bytearray(store.get_bytes(KEY))
    data[len(data) // 2] ^= 0x01
    store.put_bytes(KEY, bytes(data))


def test_a_reupload_with_other_content_is_a_new_version(store):
    catalog, tape = resources.catalog(), resources.tape()
    _upload(store, seed=1)
    first = ingest.fn(store.uri(KEY))
    archive_to_tape.fn(first)
    version = "0.1.0+test"
    reco = keys.reco_key(version, "LNGS", RUN)
    store.put_bytes(reco, b"reco of the first upload")  # what process-run made of it
    store.put_bytes(keys.quality_prefix(version, "LNGS", RUN) + "summary.json", b"{}")
    catalog.upsert_reco_output(RUN, "LNGS", version, "cfg", store.uri(reco), 2, 5)
    catalog.upsert_quality_report(RUN, "LNGS", version, None, "good", {"n": 2})

    _upload(store, seed=1)  # the same bytes again (new ETag): read, same adler32
    assert ingest.fn(store.uri(KEY)) == first
    assert catalog.raw_file(first.uri).version == 1

    _correct(store)  # corrected content, same size
    assert store.size(KEY) == first.size
    second = ingest.fn(store.uri(KEY))
    assert second.adler32 != first.adler32 and second.size == first.size
    raw = catalog.raw_file(first.uri)
    assert (raw.version, raw.adler32, raw.etag) == (2, second.adler32, store.etag(KEY))
    assert ingest.fn(store.uri(KEY)) == second  # and now that is what is known

    [earlier] = catalog.raw_file_versions(first.uri)
    assert (earlier.version, earlier.adler32, earlier.size) == (1, first.adler32, first.size)
    kept = {item["was"]: item["uri"] for item in earlier.kept}
    old_tape = tape.uri(keys.superseded_key(KEY, "LNGS", RUN, 1))
    assert kept[tape.uri(KEY)] == old_tape
    assert tape.verify(tape.key_of(old_tape), first.adler32)  # the old copy, intact
    kept_reco = kept[store.uri(reco)]
    assert store.get_bytes(store.key_of(kept_reco)) == b"reco of the first upload"
    assert not store.exists(reco)  # the next reconstruction writes the usual key
    assert catalog.reco_output(RUN, "LNGS", version) is None
    assert catalog.quality_report(RUN, "LNGS", version) is None
    assert catalog.tape_copies(raw_uri=first.uri) == []

    copy = archive_to_tape.fn(second)  # the new version goes to tape under the raw key
    assert copy == tape.uri(KEY) and tape.verify(KEY, second.adler32)
    [record] = catalog.tape_copies(raw_uri=first.uri)
    assert (record.adler32, record.state) == (second.adler32, "ok")
