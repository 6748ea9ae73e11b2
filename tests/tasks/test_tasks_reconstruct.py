"""Reconstruction task helpers and policies (no Prefect server needed)."""

from __future__ import annotations

import re

import pytest

from cygno.reco.config import load_config, reco_version
from cygno.tasks import reconstruct as t
from cygno.tasks.models import Chunk, Pedestal, RawFile


@pytest.mark.parametrize(
    ("pictures", "chunk_events", "workers", "sizes"),
    [
        (40, 50, 2, [20, 20]),  # at least one chunk per worker
        (400, 50, 2, [50] * 8),  # at most chunk_events pictures each
        (7, 3, 2, [3, 3, 1]),
        (1, 50, 8, [1]),
        (0, 50, 2, []),
    ],
)
def test_plan_chunks_covers_every_picture_once(pictures, chunk_events, workers, sizes):
    chunks = t.plan_chunks(pictures, chunk_events, workers)
    assert [c.stop - c.start for c in chunks] == sizes
    covered = [i for c in chunks for i in range(c.start, c.stop)]
    assert covered == list(range(pictures))


def _params(adler32="0a0b0c0d", start=0, config="lngs"):
    raw = RawFile("file:///s/raw/LNGS/run00001.mid.gz", "raw/LNGS/run00001.mid.gz", 1, "LNGS",
                  10, adler32, "m", 5, 4)  # fmt: skip
    return {
        "raw": raw,
        "chunk": Chunk(start, start + 2),
        "pedestal": Pedestal(0, "pedestals/LNGS/ped_run00000.npz"),
        "config": load_config(config),
    }


def test_chunk_cache_key_changes_with_bytes_pictures_and_configuration():
    key = t._chunk_cache_key(None, _params())
    assert key == t._chunk_cache_key(None, _params())
    assert re.fullmatch(r"reco-chunk-[0-9a-f]{32}", key)
    assert key != t._chunk_cache_key(None, _params(adler32="ffffffff"))
    assert key != t._chunk_cache_key(None, _params(start=2))
    assert key != t._chunk_cache_key(None, _params(config="mc"))


def test_a_reco_version_the_configuration_cannot_make_is_refused(monkeypatch):
    monkeypatch.setenv("CYGNO_RECO_CONFIG", "lngs")
    from cygno.settings import get_settings

    get_settings.cache_clear()
    try:
        assert t.resolve_config(expected_version=reco_version(load_config("lngs"))).name == "lngs"
        with pytest.raises(ValueError, match="reco_config"):
            t.resolve_config(expected_version="0.0.0+deadbeef")
    finally:
        get_settings.cache_clear()


def test_policies():
    chunk = t.reconstruct_chunk
    assert chunk.retries >= 2 and chunk.cache_key_fn is t._chunk_cache_key
    assert chunk.fn.__module__ == "cygno.tasks.jobs"  # the job never imports Prefect
    assert chunk.timeout_seconds and t.merge_reco.retries and t.register_reco.retries
