"""Fixed CPU cost of a fresh process: a chunk job and `cygno reco` (issue 11, goal ≤ 0.5 s).

    fixed cost = CPU of the fresh process − CPU of the same work in a warm process

on the same two LIME pictures (2304², .mid.gz, mixed): the real job command
(``python -m cygno.htcondor_runner.job payload result``, reading from a file:// store)
and the real ``cygno reco`` command. What is left is interpreter start, imports,
loading the cached numba kernels and unpickling the payload: what every HTCondor job
pays again. A breakdown of a fresh process shows where it goes, and the chunk size
that keeps it under 10 % of a job follows from it.
"""

from __future__ import annotations

import io
import os
import resource
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from cygno.htcondor_runner import payload
from cygno.reco.config import load_config
from cygno.reco.pedestal import PedestalMaps, pedestal_from_frames
from cygno.reco.reconstruct import reconstruct_file, warm_up
from cygno.reco.simulate import make_camera, simulate_picture
from cygno.reco.simulate.run import simulate_run
from cygno.storage import keys
from cygno.storage.checksum import adler32_of
from cygno.storage.lineage import lineage
from cygno.storage.objectstore import ObjectStore
from cygno.tasks import jobs
from cygno.tasks.models import Chunk, Pedestal, RawFile

pytestmark = pytest.mark.bench

SHAPE = (2304, 2304)
PICTURES = 2
GOAL_SECONDS = 0.5
REPEATS = 3

# Where a fresh process spends its fixed cost (CPU seconds after each stage), with the
# cyclic GC off while loading, as a fresh job (htcondor_runner.job) and `cygno` load.
# uproot and awkward write the ROOT file; numba imports scipy.linalg for its BLAS check
# when it sets up its registries, the first time a kernel is loaded; the settings come
# only in a job that shares the store. What the process spends after the last stage is
# its shutdown.
_STAGES = textwrap.dedent(
    """
    import gc
    import time
    gc.disable()
    marks = [("interpreter", time.process_time())]
    import numpy
    marks.append(("numpy", time.process_time()))
    import numba
    marks.append(("numba", time.process_time()))
    import awkward, uproot
    marks.append(("uproot and awkward", time.process_time()))
    import cygno.tasks.jobs
    marks.append(("other imports of a chunk job", time.process_time()))
    import cygno.tasks.resources
    marks.append(("settings (pydantic-settings)", time.process_time()))
    import scipy.linalg
    marks.append(("scipy.linalg (numba's BLAS check)", time.process_time()))
    from cygno.reco.reconstruct import warm_up
    warm_up()
    marks.append(("numba registries + cached kernels", time.process_time()))
    gc.freeze()
    gc.enable()
    print(";".join(f"{name}={t:.4f}" for name, t in marks))
    """
)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _process_cpu(args: list[str], env: dict[str, str]) -> tuple[float, str]:
    """CPU seconds (user + system) of one child process, and its stdout."""
    before = _children_cpu()
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return _children_cpu() - before, done.stdout


def _warm_cpu(fn) -> float:
    """CPU seconds of `fn` in this (warm) process, best of REPEATS."""
    best = float("inf")
    for _ in range(REPEATS):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


@pytest.fixture(scope="module")
def lime(tmp_path_factory):
    """A file:// store with a 2-picture LIME run and its pedestal maps."""
    root = tmp_path_factory.mktemp("startup")
    store = ObjectStore(f"file://{root / 'store'}")
    raw_key = keys.raw_key("LNGS", 5)
    ped_key = keys.pedestal_key("LNGS", 4, lineage("pedestal", pictures=8))
    raw_path = root / "run00005.mid.gz"
    simulate_run(raw_path, 5, PICTURES, kind="mixed", shape=SHAPE, seed=7, camera_seed=8)
    store.put_file(raw_path, raw_key)
    rng = np.random.default_rng(1)
    camera = make_camera(8, SHAPE)
    frames = (simulate_picture(rng, SHAPE, kind="pedestal", camera=camera)[0] for _ in range(8))
    maps = pedestal_from_frames(frames, 8, run=4)
    ped_path = root / "ped.npz"
    maps.save(ped_path)
    buffer = io.BytesIO()
    maps.save(buffer)
    store.put_bytes(ped_key, buffer.getvalue())
    size = raw_path.stat().st_size
    raw = RawFile(store.uri(raw_key), raw_key, 5, "LNGS", size, adler32_of(raw_path), "", 0, 2)
    return store, raw, Pedestal(4, ped_key), raw_path, ped_path


def _environment(store: ObjectStore) -> dict[str, str]:
    env = dict(os.environ)
    env["CYGNO_STORE_URL"] = store.url
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return env


def test_bench_fixed_cost_per_process(lime, tmp_path, figure):
    store, raw, pedestal, raw_path, ped_path = lime
    config = load_config("lngs")
    env = _environment(store)
    chunk = Chunk(0, PICTURES)
    call = tmp_path / "payload.pkl"
    call.write_bytes(payload.dump_call(jobs.reconstruct_chunk, (raw, chunk, pedestal, config), {}))
    job = [sys.executable, "-m", "cygno.htcondor_runner.job", str(call), str(tmp_path / "out")]
    cygno = str(Path(sys.executable).with_name("cygno"))
    cli = [cygno, "reco", str(raw_path), "--pedestal", str(ped_path),
           "--events", f"0:{PICTURES}", "-o", str(tmp_path / "cli.root")]  # fmt: skip

    warm_up()
    old = os.environ.get("CYGNO_STORE_URL")
    os.environ["CYGNO_STORE_URL"] = store.url  # the warm run reads the same store
    try:
        warm_job = _warm_cpu(lambda: jobs.reconstruct_chunk(raw, chunk, pedestal, config))
    finally:
        if old is None:
            os.environ.pop("CYGNO_STORE_URL")
        else:
            os.environ["CYGNO_STORE_URL"] = old

    def warm_cli() -> None:
        adler32_of(raw_path)
        maps = PedestalMaps.load(ped_path)
        reconstruct_file(raw_path, maps, config, (0, PICTURES), tmp_path / "warm.root")

    warm_reco = _warm_cpu(warm_cli)
    fresh_job = min(_process_cpu(job, env)[0] for _ in range(REPEATS))
    fresh_cli = min(_process_cpu(cli, env)[0] for _ in range(REPEATS))
    stages_cpu, stages = min(
        (_process_cpu([sys.executable, "-c", _STAGES], env) for _ in range(REPEATS)),
        key=lambda done: done[0],
    )
    job_fixed, cli_fixed = fresh_job - warm_job, fresh_cli - warm_reco
    per_picture = warm_job / PICTURES  # an upper bound: per-file setup is in it too

    print(f"\nfixed cost of a fresh process, {PICTURES} LIME pictures (CPU s, best of {REPEATS})")
    print(f"  chunk job    fresh {fresh_job:6.3f}  warm {warm_job:6.3f}  fixed {job_fixed:6.3f}")
    print(f"  cygno reco   fresh {fresh_cli:6.3f}  warm {warm_reco:6.3f}  fixed {cli_fixed:6.3f}")
    previous = 0.0
    for mark in stages.strip().split(";"):
        name, value = mark.split("=")
        print(f"  fresh process: {name:38s} {float(value) - previous:6.3f} s")
        previous = float(value)
    print(f"  fresh process: {'shutdown':38s} {stages_cpu - previous:6.3f} s")
    print(
        f"  chunk size keeping the fixed cost under 10 % of a job: "
        f"≥ {job_fixed / (0.1 * per_picture):.0f} pictures ({per_picture:.3f} s each)"
    )
    figure("fixed CPU of a fresh chunk-job process", job_fixed, GOAL_SECONDS, "lower", "s")
    figure("fixed CPU of a fresh `cygno reco` process", cli_fixed, GOAL_SECONDS, "lower", "s")
