"""Every shape branch equals production's definition, computed independently by the slow
plain-numpy version in tests/reco/naive.py, per cluster within 1 %, on simulated LIME
pictures of every kind (⁵⁵Fe spots, muons, electron and nuclear recoils, mixed)."""

from __future__ import annotations

import numpy as np
import pytest

from cygno.reco import picture as pic
from cygno.reco.config import load_config
from cygno.reco.features import cluster_features
from cygno.reco.idbscan import idbscan
from cygno.reco.pedestal import pedestal_from_frames
from cygno.reco.reconstruct import Prepared
from cygno.reco.simulate import make_camera, simulate_picture
from tests.reco import naive

SHAPE = (2304, 2304)
KINDS = ("fe55", "muon", "er", "nr", "mixed")


@pytest.fixture(scope="module")
def clusters():
    camera = make_camera(11, SHAPE)
    rng = np.random.default_rng(14)
    frames = (simulate_picture(rng, SHAPE, kind="pedestal", camera=camera)[0] for _ in range(8))
    pedestal = pedestal_from_frames(frames, 8, run=1)
    config = load_config("lngs")
    prep = Prepared(pedestal, config)
    whole = (0, SHAPE[0], 0, SHAPE[1])
    found = []
    for kind in KINDS:
        frame, _ = simulate_picture(rng, SHAPE, kind=kind, camera=camera)
        steps = pic.process(frame, prep.mean, prep.threshold, prep.chain, prep.ws)
        result = idbscan(steps.points, steps.weights, config.idbscan)
        z = pic.PictureZ(frame, prep.mean, config.picture.cimax)
        zs = pic.PictureZS(z, prep.threshold, whole)
        ours, ids = cluster_features(
            z, zs, steps.points, result.labels, result.tracklike, prep.features
        )
        z_ref, zs_ref = naive.zero_suppressed(
            frame, pedestal.mean, pedestal.sigma, config.picture.nsigma,
            config.picture.cimax, whole,
        )  # fmt: skip
        for row, cid in enumerate(ids):
            macro = steps.points[result.labels == cid]
            ref = naive.production_cluster(z_ref, zs_ref, macro, config.picture.rebin)
            found.append((kind, row, {k: v[row] for k, v in ours.items()}, ref))
    return found


def test_every_kind_gives_clusters(clusters):
    assert {kind for kind, *_ in clusters} == set(KINDS)


def test_shape_branches_match_production_definition_within_1_percent(clusters):
    compared = set()
    bad = []
    for kind, row, ours, ref in clusters:
        for name, want in ref.items():
            compared.add(name)
            got = float(ours[name])
            if abs(got - want) > 0.01 * max(abs(want), 1e-3):
                bad.append(f"{kind} cluster {row} {name}: ours {got:.6g}, production {want:.6g}")
    assert not bad, "\n".join(bad)
    shape = {"sc_length", "sc_width", "sc_longrms", "sc_latrms", "sc_lp0fwhm", "sc_tp0fwhm"}
    shape |= {"sc_size", "sc_lgausssigma", "sc_tgausssigma", "sc_theta", "sc_lfullrms"}
    assert shape <= compared
