"""Corrupt raw files through ingest: each one is quarantined whole, with one reason that
names the file and where it breaks, the catalog holds the bytes' own checksum, and the
failure is not retried. Bombs and garbage are refused with bounded work and reports."""

from __future__ import annotations

import gzip
import io
import json
import struct
import time
import tracemalloc
import zlib

import psutil
import pytest

from cygno.storage import keys, midas
from cygno.storage.checksum import adler32_of as _adler32_of
from cygno.storage.midas.errors import MAX_DEFECTS_KEPT
from cygno.tasks import resources
from cygno.tasks.ingest import CorruptRawFile, _retry_if_transient, ingest
from tests.storage.test_midas import write_run

RUN = 21


def good_run(tmp_path) -> bytes:
    path = tmp_path / "good.mid.gz"
    write_run(path, "gzip", n_pictures=4, run=RUN)
    return path.read_bytes()


def flip(data: bytes, at: int) -> bytes:
    out = bytearray(data)
    out[at] ^= 0x5A
    return bytes(out)


def zeros_bomb(inflated: int) -> bytes:
    return gzip.compress(bytes(inflated), compresslevel=9)


def _corrupt(name: str, good: bytes) -> bytes:
    return {
        "truncated": lambda: good[: len(good) * 2 // 3],
        "bit flip in the deflate stream": lambda: flip(good, len(good) // 2),
        "bad CRC32 in the gzip trailer": lambda: flip(good, len(good) - 6),
        "bad ISIZE in the gzip trailer": lambda: flip(good, len(good) - 2),
        "wrong event size": lambda: _wrong_size(good),
        "zero bytes": lambda: b"",
        "not MIDAS": lambda: gzip.compress(b"%PDF-1.7 this is a PDF, not a run\n" * 200),
        "plain garbage": lambda: bytes(range(256)) * 64,
    }[name]()


def _wrong_size(good: bytes) -> bytes:
    plain = bytearray(gzip.decompress(good))
    (bor_size,) = struct.unpack_from("<I", plain, 12)
    first = 16 + bor_size  # the first data event's header
    struct.pack_into("<I", plain, first + 12, 3_000_000)  # data_size: past the file's end
    return gzip.compress(bytes(plain))


EXPECTED = {
    "truncated": "truncated payload",
    "bit flip in the deflate stream": "stream damaged at or before compressed byte",
    "bad CRC32 in the gzip trailer": "stream damaged at or before compressed byte",
    "bad ISIZE in the gzip trailer": "stream damaged at or before compressed byte",
    "wrong event size": "truncated payload: data_size 3000000",
    "zero bytes": "empty file: no events",
    "not MIDAS": "byte offset 0",
    "plain garbage": "byte offset 0",
}


def _put(store, data: bytes) -> str:
    key = keys.raw_key("LNGS", RUN)
    store.put_bytes(key, data)
    return key


def _assert_quarantined_whole(store, key: str, data: bytes, caught: pytest.ExceptionInfo):
    """No byte lost, one quarantined copy, one reason, catalog true to the bytes."""
    target = keys.quarantine_key(key)
    assert not store.exists(key) and store.get_bytes(target) == data
    assert [k for k in store.list("") if not k.endswith(".json")] == [target]
    reason = json.loads(store.get_bytes(keys.quarantine_reason_key(target)))
    assert reason["reason"].startswith(f"{key}: ") and reason["reason"] in str(caught.value)
    assert reason["adler32"] == adler32_of(data) and reason["size"] == len(data)
    row = resources.catalog().raw_file(store.uri(target))
    assert (row.state, row.adler32, row.size) == ("quarantined", adler32_of(data), len(data))
    assert resources.catalog().raw_file(store.uri(key)) is None
    assert not _retry_if_transient(None, None, _Failed(caught.value))
    return reason


class _Failed:
    """What Prefect hands a retry condition: a state whose result() raises."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def result(self):
        raise self.error


@pytest.mark.parametrize("case", list(EXPECTED))
def test_corrupt_input_is_quarantined_whole_with_one_clear_reason(store, tmp_path, case):
    data = _corrupt(case, good_run(tmp_path))
    key = _put(store, data)
    with pytest.raises(CorruptRawFile) as caught:
        ingest.fn(store.uri(key))
    reason = _assert_quarantined_whole(store, key, data, caught)
    assert EXPECTED[case] in reason["reason"], reason["reason"]
    assert "Error -" not in reason["reason"] or "compressed byte" in reason["reason"]


def test_trailer_damage_names_the_file_and_offset_in_the_strict_reader(tmp_path):
    path = tmp_path / f"run{RUN:05d}.mid.gz"
    path.write_bytes(flip(good_run(tmp_path), len(good_run(tmp_path)) - 6))
    with pytest.raises(midas.MidasFormatError) as caught, midas.MidasFile(path) as f:
        for _ in f:
            pass
    assert str(path) in str(caught.value) and "compressed byte" in str(caught.value)
    with pytest.raises((zlib.error, OSError)):
        gzip.decompress(path.read_bytes())  # the damage is real, not ours


def one_huge_event_bomb(inflated: int) -> bytes:
    """A proper begin-of-run, then one event claiming ``inflated`` bytes of zeros."""
    bor = struct.pack("<HHIII", 0x8000, 0x494D, RUN, 0, 3) + b"{}\x00"
    huge = struct.pack("<HHIII", 1, 0, 0, 0, inflated)
    return gzip.compress(bor + huge + bytes(inflated), compresslevel=9)


BOMBS = {
    "200 MB of zeros": (lambda: zeros_bomb(200 << 20), "refused: 10000 defects"),
    "one 200 MB event": (lambda: one_huge_event_bomb(200 << 20), "a decompression bomb"),
}


@pytest.mark.parametrize("bomb", list(BOMBS))
def test_a_gzip_bomb_is_refused_with_bounded_time_memory_and_report(store, bomb):
    make, expected = BOMBS[bomb]
    data = make()  # the hostile pass's bomb: ~200 kB that inflate to 200 MB
    key = _put(store, data)
    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(CorruptRawFile, match=expected) as caught:
        ingest.fn(store.uri(key))
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    reason = _assert_quarantined_whole(store, key, data, caught)
    assert expected in reason["reason"]
    assert len(reason["defects"]) <= MAX_DEFECTS_KEPT
    assert len(json.dumps(reason)) < 64_000
    assert peak < 200 << 20, f"peak Python allocation {peak >> 20} MiB"
    print(f"bomb refused in {seconds:.1f} s, peak {peak >> 20} MiB, rss {_rss_mib()} MiB")


def test_a_file_of_defects_keeps_a_bounded_list_and_counts_the_rest(tmp_path):
    # BOR, then thousands of fragment events: every one is a defect
    bor = struct.pack("<HHIII", 0x8000, 0x494D, RUN, 0, 3) + b"{}\x00"
    fragment = struct.pack("<HHIII", 0xC001, 0, 1, 0, 0)
    path = tmp_path / f"run{RUN:05d}.mid"
    path.write_bytes(bor + fragment * 30_000)
    report = midas.validate(path)
    assert len(report.defects) == MAX_DEFECTS_KEPT
    assert report.defect_count >= 10_000 and report.more_defects > 0
    assert report.refused and report.refused.startswith("refused: ")
    assert report.reason.startswith("refused: ")


def _rss_mib() -> int:
    return psutil.Process().memory_info().rss >> 20


def adler32_of(data: bytes) -> str:
    return _adler32_of(io.BytesIO(data))


def test_inspect_reports_a_damaged_trailer_instead_of_crashing(tmp_path):
    from typer.testing import CliRunner

    from cygno.cli import _register, app

    _register()
    good = good_run(tmp_path)
    path = tmp_path / f"run{RUN:05d}.mid.gz"
    path.write_bytes(flip(good, len(good) - 6))
    result = CliRunner().invoke(app, ["inspect", str(path)], env={"COLUMNS": "200"})
    assert result.exit_code == 1, result.output  # a report, not a crash
    assert "defects" in result.output and "stream damaged" in result.output
    assert "Traceback" not in result.output
