"""Beyond production, on the simulator and hard cases made with it (LIME size, LNGS
parameters): the default `refined` clustering against production's, side by side.

- 1.5–3 keV spots are found (≥ 95 %),
- a ⁵⁵Fe spot 25–60 px from a muon is its own cluster with its light (≥ 80 %; production
  merges it into the muon),
- recoils are found as often as production finds them, noise-only pictures give nothing,
- the two modes carry different reco versions.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cygno.reco.config import load_config, reco_version
from cygno.reco.pedestal import pedestal_from_frames
from cygno.reco.reconstruct import Prepared, reconstruct_picture
from cygno.reco.simulate import (
    LIGHT_YIELD,
    Geometry,
    cosmic_muon,
    fe55_spot,
    make_camera,
    simulate_picture,
)

SHAPE = (2304, 2304)
GEOM = Geometry(SHAPE)


@pytest.fixture(scope="module")
def setup():
    camera = make_camera(5, SHAPE)
    rng = np.random.default_rng(31)
    frames = (simulate_picture(rng, SHAPE, kind="pedestal", camera=camera)[0] for _ in range(16))
    pedestal = pedestal_from_frames(frames, 16, run=1)
    refined = load_config("lngs")
    production = dataclasses.replace(
        refined, idbscan=dataclasses.replace(refined.idbscan, mode="production")
    )
    modes = {c.idbscan.mode: (c, Prepared(pedestal, c)) for c in (refined, production)}
    return camera, pedestal, modes


def _reco(setup, mode, frame, seed):
    _, pedestal, modes = setup
    config, prep = modes[mode]
    return reconstruct_picture(frame, pedestal, config, prep, seed=seed)


def _nearest(clusters, x, y, radius=10.0):
    if not len(clusters["sc_xmean"]):
        return None
    d = np.hypot(clusters["sc_xmean"] - x, clusters["sc_ymean"] - y)
    k = int(np.argmin(d))
    return k if d[k] < radius else None


def _low_energy_spot(rng, energy):
    spot = fe55_spot(rng, GEOM)
    truth = dataclasses.replace(spot.truth, energy_kev=energy, light=energy * LIGHT_YIELD)
    return dataclasses.replace(spot, truth=truth)


def test_modes_have_different_reco_versions(setup):
    _, _, modes = setup
    assert reco_version(modes["refined"][0]) != reco_version(modes["production"][0])


def test_low_energy_spots_found(setup):
    camera = setup[0]
    rng = np.random.default_rng(15)
    spots = found = 0
    for i in range(15):
        tracks = [_low_energy_spot(rng, rng.uniform(1.5, 3.0)) for _ in range(4)]
        frame, truth = simulate_picture(rng, SHAPE, camera=camera, tracks=tracks)
        _, clusters = _reco(setup, "refined", frame, i)
        for spot in truth:
            spots += 1
            found += _nearest(clusters, spot.x, spot.y) is not None
    print(f"1.5–3 keV spots: {found}/{spots}")
    assert found / spots >= 0.95


def test_fe55_spot_next_to_a_muon_is_its_own_cluster(setup):
    camera = setup[0]
    rng = np.random.default_rng(25)
    alone = {"refined": 0, "production": 0}
    light_ratio = []
    n = 12
    for i in range(n):
        muon = cosmic_muon(rng, GEOM)
        p = muon.points
        k = len(p) // 2 + int(rng.integers(-500, 500))
        step = p[k + 1] - p[k]
        normal = np.array([-step[1], step[0]]) / np.hypot(*step)
        at = p[k] + normal * rng.uniform(25, 60) * rng.choice([-1, 1])
        spot = fe55_spot(rng, GEOM, at=at)
        frame, _ = simulate_picture(rng, SHAPE, camera=camera, tracks=[muon, spot])
        for mode in alone:
            _, clusters = _reco(setup, mode, frame, i)
            j = _nearest(clusters, spot.truth.x, spot.truth.y)
            if j is None or clusters["sc_tracklike"][j]:
                continue
            ratio = clusters["sc_integral"][j] / spot.truth.light
            if abs(ratio - 1) < 0.3:
                alone[mode] += 1
                if mode == "refined":
                    light_ratio.append(ratio)
            muons = clusters["sc_tracklike"] == 1
            assert muons.sum() == 1, f"{mode}: the muon is one track-like cluster"
    print(f"⁵⁵Fe next to a muon, own cluster: {alone} of {n}; "
          f"refined <integral>/<light> = {np.mean(light_ratio):.3f}")  # fmt: skip
    assert alone["refined"] / n >= 0.8
    assert alone["production"] <= 0.2 * n


@pytest.mark.parametrize("kind", ["er", "nr", "muon"])
def test_no_loss_on_recoils_and_muons(setup, kind):
    camera = setup[0]
    rng = np.random.default_rng({"er": 41, "nr": 42, "muon": 43}[kind])
    found = {"refined": 0, "production": 0}
    total = 0
    for i in range(6):
        frame, truth = simulate_picture(rng, SHAPE, kind=kind, camera=camera)
        for mode in found:
            _, clusters = _reco(setup, mode, frame, i)
            for track in truth:
                total += mode == "refined"
                radius = 30.0 if kind != "muon" else 80.0
                found[mode] += _nearest(clusters, track.x, track.y, radius) is not None
    print(f"{kind}: found {found} of {total}")
    assert found["refined"] >= found["production"]
    assert found["refined"] >= 0.9 * total


def test_noise_only_pictures_give_no_cluster(setup):
    camera = setup[0]
    rng = np.random.default_rng(51)
    for i in range(8):
        frame, _ = simulate_picture(rng, SHAPE, kind="noise", camera=camera)
        record, _ = _reco(setup, "refined", frame, i)
        assert record["nSc"] == 0
