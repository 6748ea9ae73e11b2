"""Chunk jobs on a LIME-size gzip run: the last chunk read in a fresh process without vs.
with the shipped gzip access points, and the one-time index pass against plain reads.

Ratios only, measured in the same run (best of REPEAT, the machine is shared).
"""

from __future__ import annotations

import gzip
import json
import pickle
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from isal import igzip

from cygno.storage.midas import MidasFile

from .test_bench_midas import _frames, _write

pytestmark = pytest.mark.bench

N_PICTURES = 40
CHUNK = (35, 40)  # the last 5 pictures: without access points the worst case
REPEAT = 3

READER = textwrap.dedent(
    """
    import json, pickle, sys, time, zlib
    from cygno.storage.midas import MidasFile
    path, index_path, start, stop = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    t0 = time.perf_counter()
    index = pickle.load(open(index_path, "rb")) if index_path != "-" else None
    check, n = 1, 0
    with MidasFile(path, index=index) as f:
        for event in f.read_events(start, stop):
            check = zlib.adler32(event.payload, check)
            n += 1
    print(json.dumps({"seconds": time.perf_counter() - t0, "adler32": check, "events": n}))
    """
)


def _plain_read(opener, path: Path) -> float:
    t0 = time.perf_counter()
    with opener(path, "rb") as f:
        while f.read(1 << 20):
            pass
    return time.perf_counter() - t0


def _fresh_process(path: Path, index_path: str) -> dict:
    command = [sys.executable, "-c", READER, str(path), index_path, *map(str, CHUNK)]
    result = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(result.stdout)


def _best(runs: list[dict]) -> dict:
    assert len({(r["adler32"], r["events"]) for r in runs}) == 1
    return min(runs, key=lambda r: r["seconds"])


def test_last_chunk_in_a_fresh_process_with_shipped_access_points(tmp_path):
    path = tmp_path / "run01234.mid.gz"
    _write(path, N_PICTURES, _frames(4))

    t_gzip = min(_plain_read(gzip.open, path) for _ in range(REPEAT))
    t_isal = min(_plain_read(igzip.open, path) for _ in range(REPEAT))
    t0 = time.perf_counter()
    with MidasFile(path) as f:
        index = f.index()
    t_index = time.perf_counter() - t0
    index_path = tmp_path / "index.pickle"
    index_path.write_bytes(pickle.dumps(index))

    without = _best([_fresh_process(path, "-") for _ in range(REPEAT)])
    with_index = _best([_fresh_process(path, str(index_path)) for _ in range(REPEAT)])
    assert with_index["adler32"] == without["adler32"] and with_index["events"] == 5

    access = index.gzip_access
    saved = without["seconds"] - with_index["seconds"]
    uncompressed = access.uncompressed_size
    print(
        f"\n{N_PICTURES} pictures 2304x2304, {path.stat().st_size / 1e6:.0f} MB gzip, "
        f"{uncompressed / 1e6:.0f} MB uncompressed; access points: {access.n_points} "
        f"(every {access.spacing >> 20} MiB), {access.nbytes / 1e3:.0f} kB shipped "
        f"({len(pickle.dumps(index)) / 1e3:.0f} kB pickled EventIndex)\n"
        f"last chunk {CHUNK} in a fresh process: without / with access points = "
        f"{without['seconds'] / with_index['seconds']:.1f}x\n"
        f"one-time index pass / plain gzip read = {t_index / t_gzip:.2f}; "
        f"/ isal read = {t_index / t_isal:.2f}; "
        f"/ what the last chunk saves = {t_index / saved:.2f} (a chunk saves in proportion "
        "to its position, so the pass pays off from about twice that many chunks)"
    )
