"""Per-chunk fixed cost of the local backend, cold job processes against warm workers.

The fixed cost of a chunk is what its job pays apart from its pictures: measured as
the wall time, from submission to the termination event, of a chunk job with no
pictures (the real job command ``python -m cygno.htcondor_runner.job`` in its sandbox
with a pool job's environment: interpreter, imports, numba kernels, payload, LIME
pedestal maps, opening the run). Cold: one new process per job, what every HTCondor
job pays. Warm: the same job in a warm worker that already ran one. Printed as
cold / warm, beside the same call in this process (the floor).
"""

from __future__ import annotations

import io
import os
import sys
import time

import numpy as np
import pytest

from cygno.htcondor_runner import JobSpec, payload
from cygno.htcondor_runner.local import JOB_MODULE, LocalScheduler
from cygno.reco.config import load_config
from cygno.reco.pedestal import pedestal_from_frames
from cygno.reco.reconstruct import warm_up
from cygno.reco.simulate import make_camera, simulate_picture
from cygno.reco.simulate.run import simulate_run
from cygno.storage.checksum import adler32_of
from cygno.tasks import jobs
from cygno.tasks.models import Chunk, Pedestal, RawFile

pytestmark = pytest.mark.bench

SHAPE = (2304, 2304)
REPEATS = 3
GOAL_RATIO = 4.0


@pytest.fixture(scope="module")
def chunk_call(tmp_path_factory):
    """The arguments of a LIME chunk job with no pictures, inputs as file:// URLs."""
    root = tmp_path_factory.mktemp("warm")
    raw_path = root / "run00005.mid.gz"
    simulate_run(raw_path, 5, 1, kind="mixed", shape=SHAPE, seed=7, camera_seed=8)
    rng = np.random.default_rng(1)
    camera = make_camera(8, SHAPE)
    frames = (simulate_picture(rng, SHAPE, kind="pedestal", camera=camera)[0] for _ in range(8))
    buffer = io.BytesIO()
    pedestal_from_frames(frames, 8, run=4).save(buffer)
    ped_path = root / "ped.npz"
    ped_path.write_bytes(buffer.getvalue())
    size = raw_path.stat().st_size
    raw = RawFile(raw_path.as_uri(), "raw/LNGS/run00005.mid.gz", 5, "LNGS", size,
                  adler32_of(raw_path), "", 1, 1)  # fmt: skip
    access = jobs.ChunkAccess(raw_path.as_uri(), ped_path.as_uri())
    return (raw, Chunk(0, 0), Pedestal(4, "pedestals/LNGS/ped_run00004.npz"),
            load_config("lngs")), {"access": access}  # fmt: skip


def _job_seconds(scheduler: LocalScheduler, directory, call: bytes, env: dict) -> float:
    """Wall seconds from submission until the job has left the queue (terminated)."""
    directory.mkdir(parents=True, exist_ok=True)
    payload.write_bytes(directory / "payload.pkl", call)
    spec = JobSpec(
        executable=sys.executable,
        arguments=["-m", JOB_MODULE, "payload.pkl", "result.pkl"],
        log=directory / "job.log",
        output=directory / "job.out",
        error=directory / "job.err",
        batch_name="bench",
        directory=directory,
        input_files=("payload.pkl",),
        output_files=("result.pkl",),
        environment=env,
        request_memory_mb=8192,
    )
    start = time.perf_counter()
    job = scheduler.submit(spec)
    while scheduler.is_queued(job):
        scheduler.wait(job, 0.01)
    seconds = time.perf_counter() - start
    body = payload.load_outcome((directory / "result.pkl").read_bytes())
    assert body["ok"], body.get("traceback")
    return seconds


def test_bench_warm_workers_fixed_cost(chunk_call, tmp_path, figure):
    args, kwargs = chunk_call
    call = payload.dump_call(jobs.reconstruct_chunk, args, kwargs)
    env = {name: os.environ[name] for name in ("NUMBA_CACHE_DIR",) if name in os.environ}
    warm_up()
    floor = min(_timed(lambda: jobs.reconstruct_chunk(*args, **kwargs)) for _ in range(REPEATS))
    cold = LocalScheduler(max_workers=1, warm_workers=False)
    warm = LocalScheduler(max_workers=1, warm_workers=True)
    try:
        cold_s = min(_job_seconds(cold, tmp_path / f"c{i}", call, env) for i in range(REPEATS))
        first = _job_seconds(warm, tmp_path / "w-first", call, env)  # starts the worker
        warm_s = min(_job_seconds(warm, tmp_path / f"w{i}", call, env) for i in range(REPEATS))
    finally:
        cold.close()
        warm.close()
    print(f"\nper-chunk fixed cost, LIME, wall s (best of {REPEATS})")
    print(f"  in-process    {floor:6.3f}  (the same call in this warm process)")
    print(f"  cold process  {cold_s:6.3f}")
    print(f"  warm worker   {warm_s:6.3f}  (its first job {first:.3f})")
    print(f"  cold / warm = {cold_s / warm_s:.1f}")
    figure("local backend: per-chunk fixed cost, cold / warm worker", cold_s / warm_s,
           GOAL_RATIO, "higher")  # fmt: skip
    figure("local backend: warm-worker chunk job / same call in-process", warm_s / floor,
           1.3, "lower")  # fmt: skip


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start
