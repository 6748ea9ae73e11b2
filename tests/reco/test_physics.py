"""Physics on simulated truth: real LIME size (2304×2304), LNGS parameters.

The pedestal comes from simulated dark pictures of the same camera (as a pedestal run
would), every picture goes through the full chain (`reconstruct_picture`), and
reconstructed clusters are compared with the simulator's truth (production coordinates).
Targets of issue 3: ⁵⁵Fe efficiency ≥ 95 % with mean integral within 5 % of the light,
muons as ONE track-like cluster in ≥ 90 %, < 0.05 fake clusters per noise picture,
sparks vetoed.
"""

from __future__ import annotations

import numpy as np
import pytest

from cygno.reco.config import load_config
from cygno.reco.pedestal import pedestal_from_frames
from cygno.reco.reconstruct import Prepared, reconstruct_picture
from cygno.reco.simulate import make_camera, simulate_picture

SHAPE = (2304, 2304)
CAMERA_SEED = 3
PEDESTAL_PICTURES = 64


@pytest.fixture(scope="module")
def chain():
    camera = make_camera(CAMERA_SEED, SHAPE)
    rng = np.random.default_rng(2024)
    frames = (
        simulate_picture(rng, SHAPE, kind="pedestal", camera=camera)[0]
        for _ in range(PEDESTAL_PICTURES)
    )
    pedestal = pedestal_from_frames(frames, PEDESTAL_PICTURES, run=1)
    config = load_config("lngs")
    prepared = Prepared(pedestal, config)

    def reco(kind: str, n: int, seed: int, **kw):
        rng = np.random.default_rng(seed)
        out = []
        for i in range(n):
            frame, truth = simulate_picture(rng, SHAPE, kind=kind, camera=camera, **kw)
            record, clusters = reconstruct_picture(frame, pedestal, config, prepared, seed=i)
            out.append((truth, record, clusters))
        return out

    return reco


def test_fe55_spots_found_with_position_and_light(chain):
    results = chain("fe55", 20, seed=55)
    spots = found = 0
    light, integral, dist = [], [], []
    for truth, record, clusters in results:
        assert record is not None
        xs, ys = clusters["sc_xmean"], clusters["sc_ymean"]
        for spot in truth:
            spots += 1
            if not len(xs):
                continue
            d = np.hypot(xs - spot.x, ys - spot.y)
            k = int(np.argmin(d))
            if d[k] < 10:
                found += 1
                dist.append(d[k])
                light.append(spot.light)
                integral.append(clusters["sc_integral"][k])
    efficiency = found / spots
    ratio = np.mean(integral) / np.mean(light)
    print(f"55Fe: {found}/{spots} spots = {efficiency:.3f}; <integral>/<light> = {ratio:.4f}; "
          f"median distance {np.median(dist):.2f} px")  # fmt: skip
    assert spots >= 30
    assert efficiency >= 0.95
    assert abs(ratio - 1) < 0.05
    assert np.median(dist) < 1.0 and np.percentile(dist, 95) < 2.0


def test_cosmic_muons_are_one_tracklike_cluster(chain):
    results = chain("muon", 10, seed=13)
    good = 0
    for truth, record, clusters in results:
        assert record is not None
        (muon,) = truth
        track = clusters["sc_tracklike"] == 1
        if track.sum() != 1:
            continue
        k = int(np.flatnonzero(track)[0])
        span = clusters["sc_ymax"][k] - clusters["sc_ymin"][k]
        share = clusters["sc_integral"][k] / clusters["sc_integral"].sum()
        near = (
            abs(clusters["sc_xmean"][k] - muon.x) < 10
            and abs(clusters["sc_ymean"][k] - muon.y) < 20
        )
        if span > 0.9 * SHAPE[1] and share > 0.9 and near:
            good += 1
    print(f"muons: {good}/{len(results)} found as one track-like cluster")
    assert good / len(results) >= 0.9


def test_noise_pictures_have_almost_no_fake_clusters(chain):
    results = chain("noise", 20, seed=77)
    fakes = sum(record["nSc"] for _, record, _ in results)
    print(f"noise: {fakes} clusters in {len(results)} pictures")
    assert fakes / len(results) < 0.05


def test_sparks_are_vetoed(chain):
    results = chain("fe55", 3, seed=99, with_spark=True)
    assert all(record is None and clusters is None for _, record, clusters in results)
