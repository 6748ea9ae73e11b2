"""Reco throughput on a simulated LIME run (.mid.gz, 2304×2304, mixed content: a muon,
recoils and ⁵⁵Fe spots in every picture), all measured in this one run, one core:

- floor: inflate + parse the file, touching every picture (MidasFile);
- chain: `reconstruct_file` end to end (read, inflate, every step, directional iDBSCAN,
  every feature, ROOT output);
- baseline: the same reading, then plain numpy/scipy steps (tests/reco/naive.py) and
  sklearn's DBSCAN on the same points, no directional phase, no features;
- peak memory of a worker (a subprocess running the chain; its ru_maxrss).
Goal (issue 3): chain ≤ 0.1 s per picture, faster than the baseline, ≤ 500 MB.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from sklearn.cluster import DBSCAN

from cygno.reco.config import load_config
from cygno.reco.pedestal import pedestal_from_frames
from cygno.reco.reconstruct import Prepared, reconstruct_file, reconstruct_picture
from cygno.reco.simulate import make_camera, simulate_picture
from cygno.reco.simulate.run import simulate_run
from cygno.storage.midas import MidasFile
from tests.reco import naive

SHAPE = (2304, 2304)
N_PICTURES = 20
CAMERA_SEED = 8

pytestmark = pytest.mark.bench


@pytest.fixture(scope="module")
def lime_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("bench")
    raw = d / "run00777.mid.gz"
    simulate_run(raw, 777, N_PICTURES, kind="mixed", shape=SHAPE, seed=7, camera_seed=CAMERA_SEED)
    rng = np.random.default_rng(1)
    camera = make_camera(CAMERA_SEED, SHAPE)
    frames = (simulate_picture(rng, SHAPE, kind="pedestal", camera=camera)[0] for _ in range(32))
    pedestal = pedestal_from_frames(frames, 32, run=776)
    ped_path = d / "ped.npz"
    pedestal.save(ped_path)
    return raw, pedestal, ped_path


def _timed(fn, *args):
    """(result, wall seconds, CPU seconds of this process): CPU time is the steadier
    figure on a shared machine."""
    w0, c0 = time.perf_counter(), time.process_time()
    result = fn(*args)
    return result, time.perf_counter() - w0, time.process_time() - c0


def _floor(raw) -> int:
    n = 0
    with MidasFile(raw) as midas:
        for event in midas:
            if event.is_picture:
                n += int(event.picture(0)[0, 0] >= 0)
    return n


def _baseline(raw, pedestal, config) -> int:
    cfg = config
    acc = (cfg.acceptance.x_min, cfg.acceptance.x_max, cfg.acceptance.y_min, cfg.acceptance.y_max)
    n = clusters = 0
    with MidasFile(raw) as midas:
        for event in midas:
            if not event.is_picture:
                continue
            frame = event.picture(0)
            n += 1
            if frame.sum(dtype=np.int64) > 200.0 * frame.size + 9e6:
                continue
            points, weights, _, _ = naive.points_and_weights(
                frame, pedestal.mean, pedestal.sigma, cfg.picture.nsigma, cfg.picture.cimax, acc,
                cfg.picture.rebin, cfg.noise.min_neighbors_average,
            )  # fmt: skip
            if len(points):
                labels = DBSCAN(
                    eps=cfg.idbscan.eps, min_samples=cfg.idbscan.min_samples, metric="cityblock"
                ).fit_predict(points, sample_weight=weights)
                clusters += len(set(labels.tolist()) - {-1})
    assert clusters > 0
    return n


# Peak memory is the worker's own VmHWM: ru_maxrss of a spawned child also carries the
# parent's high-water mark across exec on Linux, which would count pytest's memory.
_WORKER = textwrap.dedent(
    """
    import json, sys
    from cygno.reco.config import load_config
    from cygno.reco.pedestal import PedestalMaps
    from cygno.reco.reconstruct import reconstruct_file
    raw, ped, out = sys.argv[1:4]
    s = reconstruct_file(raw, PedestalMaps.load(ped), load_config("lngs"), out_path=out)
    status = open("/proc/self/status").read().split("VmHWM:")[1].split()
    peak_mb = int(status[0]) / 1024
    print(json.dumps({"pictures": s.pictures, "spp": s.seconds_per_picture, "peak_mb": peak_mb}))
    """
)


def test_bench_reco(lime_run, tmp_path):
    raw, pedestal, ped_path = lime_run
    config = load_config("lngs")
    # compile / load every numba kernel once, outside the timings
    with MidasFile(raw) as midas:
        frame = next(e.picture(0) for e in midas if e.is_picture).copy()
    reconstruct_picture(frame, pedestal, config, Prepared(pedestal, config))

    n, floor_wall, floor_cpu = _timed(_floor, raw)
    assert n == N_PICTURES
    summary, chain_wall, chain_cpu = _timed(
        reconstruct_file, raw, pedestal, config, None, tmp_path / "bench.root"
    )
    n, base_wall, base_cpu = _timed(_baseline, raw, pedestal, config)
    assert n == N_PICTURES

    args = [sys.executable, "-c", _WORKER, str(raw), str(ped_path), str(tmp_path / "w.root")]
    for _ in range(2):  # the first run fills the numba cache if it is cold
        worker = subprocess.run(args, capture_output=True, text=True)
        assert worker.returncode == 0, worker.stderr[-3000:]
    peak = json.loads(worker.stdout.strip().splitlines()[-1])

    rows = [
        ("inflate+parse floor", floor_wall, floor_cpu),
        ("whole chain", chain_wall, chain_cpu),
        ("naive baseline", base_wall, base_cpu),
    ]
    print()
    print(f"reco benchmark: {N_PICTURES} LIME pictures 2304×2304, .mid.gz, mixed, one core")
    print(f"  {'':22s}{'wall s/pic':>12s}{'CPU s/pic':>12s}{'CPU × floor':>13s}")
    for name, wall, cpu in rows:
        per = N_PICTURES
        print(f"  {name:22s}{wall / per:12.4f}{cpu / per:12.4f}{cpu / floor_cpu:13.2f}")
    print(
        f"  baseline / chain      wall {base_wall / chain_wall:.2f}×, "
        f"CPU {base_cpu / chain_cpu:.2f}×"
    )
    print(f"  chain − floor         CPU {(chain_cpu - floor_cpu) / N_PICTURES:.4f} s/picture")
    print(f"  worker peak memory    {peak['peak_mb']:.0f} MB (fresh process, whole run, "
          f"{peak['spp']:.4f} s/picture incl. loading cached kernels)")  # fmt: skip
    print(f"  clusters              {summary.clusters} in {summary.pictures} pictures")
    assert summary.pictures == N_PICTURES and peak["pictures"] == N_PICTURES
    assert summary.clusters >= N_PICTURES  # every picture holds at least a muon
    assert 50 < peak["peak_mb"] < 50_000
