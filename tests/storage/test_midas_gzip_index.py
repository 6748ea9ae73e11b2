"""gzip access points shipped to another process: chunk reads enter near their chunk,
return exactly the sequential events, and refuse an index made for another file."""

from __future__ import annotations

import io
import multiprocessing
import pickle
import zlib
from dataclasses import replace

import pytest

from cygno.storage.midas import EventIndex, MidasFile, MidasFormatError
from cygno.storage.objectstore import ObjectStore

from .test_midas import write_run

N_PICTURES = 40
SIDE = 512  # 512 KiB per picture: ~20 MiB uncompressed, access point every 1 MiB
SPACING = 1 << 20
CHUNKS = [(0, 5), (15, 20), (35, 40)]


class Counting(io.RawIOBase):
    """A file that counts the stored bytes read through it (what a chunk job pays)."""

    def __init__(self, raw: io.BufferedReader) -> None:
        super().__init__()
        self.raw, self.nbytes = raw, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self.raw.readinto(buffer)
        self.nbytes += n
        return n

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self.raw.seek(offset, whence)

    def tell(self) -> int:
        return self.raw.tell()


def read_chunk(path: str, index: EventIndex | None, start: int, stop: int):
    """Runs in a fresh (spawned) process: the chunk's events and the stored bytes read."""
    with open(path, "rb") as raw:
        counting = Counting(raw)
        with MidasFile(counting, index=index) as f:
            events = [(e.picture_number, e.offset, e.payload) for e in f.read_events(start, stop)]
    return events, counting.nbytes


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """(path, sequential picture events, index with access points every 1 MiB)."""
    path = tmp_path_factory.mktemp("gzidx") / "run00012.mid.gz"
    write_run(path, "gzip", n_pictures=N_PICTURES, side=SIDE)
    with MidasFile(path) as f:
        sequential = [(e.picture_number, e.offset, e.payload) for e in f if e.is_picture]
    with MidasFile(path) as f:
        index = f.index(checkpoint_every=SPACING)
    return path, sequential, index


def test_index_survives_pickle(run):
    path, sequential, index = run
    access = index.gzip_access
    assert access is not None and access.n_points >= 10
    assert access.uncompressed_size > N_PICTURES * SIDE * SIDE * 2
    assert access.nbytes < access.n_points * 32 * 1024  # compressed windows
    shipped = pickle.loads(pickle.dumps(index))
    assert shipped.gzip_access == access
    with MidasFile(path, index=shipped) as f:
        chunk = [(e.picture_number, e.offset, e.payload) for e in f.read_events(20, 23)]
    assert chunk == sequential[20:23]


def test_chunks_in_a_fresh_process_equal_sequential_and_skip_the_start(run):
    path, sequential, index = run
    size = path.stat().st_size
    jobs = [(str(path), index, *chunk) for chunk in CHUNKS]
    jobs.append((str(path), None, *CHUNKS[-1]))
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        results = pool.starmap(read_chunk, jobs)
    for (start, stop), (events, _) in zip(CHUNKS, results, strict=False):
        assert events == sequential[start:stop]
    first_with, last_with, last_without = results[0][1], results[2][1], results[3][1]
    assert results[3][0] == sequential[35:40]
    assert last_without >= 0.95 * size  # without access points: inflated from byte 0
    # with them the cost does not grow with the chunk's position (fixed part: BOR read,
    # fingerprint, 1 MiB read buffers)
    assert last_with - first_with < 0.1 * size, (first_with, last_with, size)
    assert last_with < 0.55 * size, (last_with, size)


def test_chunk_read_over_s3_with_shipped_index(run, s3_server):
    path, sequential, index = run
    store = ObjectStore(f"s3://{s3_server.new_bucket()}", s3_server.storage_options())
    store.put_file(path, "raw/LNGS/run00012.mid.gz")
    shipped = pickle.loads(pickle.dumps(index))
    with (
        store.open("raw/LNGS/run00012.mid.gz", "rb") as stream,
        MidasFile(stream, index=shipped) as f,
    ):
        chunk = [(e.picture_number, e.offset, e.payload) for e in f.read_events(33, 40)]
        assert f.run_number == 12
    assert chunk == sequential[33:40]


def test_index_of_another_file_is_refused(run, tmp_path):
    _, _, index = run
    other = tmp_path / "run00012.mid.gz"
    write_run(other, "gzip", n_pictures=N_PICTURES, side=SIDE, seed=1)
    with MidasFile(other, index=index) as f, pytest.raises(MidasFormatError) as error:
        next(iter(f.read_events(30, 31)))
    assert "index does not belong to this file" in str(error.value)
    assert str(other) in str(error.value)


@pytest.mark.parametrize("compression", [None, "lz4"])
def test_index_of_another_file_is_refused_without_gzip_too(tmp_path, compression):
    first, second = tmp_path / "a" / "run00012.mid", tmp_path / "b" / "run00012.mid"
    for path, seed in [(first, 0), (second, 1)]:
        path.parent.mkdir()
        write_run(path, compression, n_pictures=6, side=64, seed=seed)
    with MidasFile(first) as f:
        index = f.index()
    assert index.gzip_access is None and index.fingerprint is not None
    with MidasFile(first, index=pickle.loads(pickle.dumps(index))) as f:
        assert [e.picture_number for e in f.read_events(4, 6)] == [4, 5]
    with MidasFile(second, index=index) as f, pytest.raises(MidasFormatError, match="belong"):
        list(f.read_events(4, 6))


def test_same_size_file_with_other_ends_is_refused(run, tmp_path):
    path, _, index = run
    data = bytearray(path.read_bytes())
    data[-20] ^= 0xFF  # inside the last 64 KiB: size unchanged, tail checksum differs
    damaged = tmp_path / "run00012.mid.gz"
    damaged.write_bytes(bytes(data))
    with MidasFile(damaged, index=index) as f, pytest.raises(MidasFormatError, match="belong"):
        list(f.read_events(38, 40))


def test_corrupted_access_points_are_refused(run):
    path, _, index = run
    broken = replace(
        index, gzip_access=replace(index.gzip_access, points=zlib.compress(b"GZIDX not really"))
    )
    with MidasFile(path, index=broken) as f, pytest.raises(MidasFormatError, match="unusable"):
        list(f.read_events(38, 40))
