"""The `Events` tree holds every branch production's Events holds (Reco_v2.1.0, LNGS
configuration, camera only: treeVars.py with scfullinfo and environment variables on),
with production's types and counters, read back with ROOT 6 as the analysis macros do."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cygno.reco import slowcontrol
from cygno.reco.config import load_config
from cygno.reco.pedestal import compute_pedestal
from cygno.reco.reconstruct import reconstruct_file
from cygno.reco.simulate import Geometry
from cygno.reco.simulate.run import ENVIRONMENT_INPUTS, simulate_run

SHAPE = (512, 512)

EVENT_I = ("run", "event", "pedestal_run")
EVENT_F = (
    "cmos_integral", "cmos_mean", "cmos_rms", "t_DBSCAN", "t_variables", "lp_len",
    "t_pedsub", "t_saturation", "t_zerosup", "t_xycut", "t_rebin", "t_medianfilter",
    "t_noisered", "Lime_pressure", "Atm_pressure", "Lime_temperature", "Atm_temperature",
    "Humidity", "Mixture_Density",
)  # fmt: skip
SC_F = tuple(
    f"sc_{n}"
    for n in [
        "size",
        "nhits",
        "integral",
        "corrintegral",
        "rms",
        "energy",
        "pathlength",
        "redpixIdx",
        "theta",
        "length",
        "width",
        "longrms",
        "latrms",
        "lfullrms",
        "tfullrms",
        "lp0amplitude",
        "lp0prominence",
        "lp0fwhm",
        "lp0mean",
        "tp0fwhm",
        "xmean",
        "ymean",
        "xmax",
        "xmin",
        "ymax",
        "ymin",
        "pearson",
        "tgaussamp",
        "tgaussmean",
        "tgausssigma",
        "tchi2",
        "tstatus",
        "lgaussamp",
        "lgaussmean",
        "lgausssigma",
        "lchi2",
        "lstatus",
    ]
)
REDPIX = {"redpix_ix": "Int_t", "redpix_iy": "Int_t", "redpix_iz": "Float_t"}


@pytest.fixture(scope="module")
def reco_file(tmp_path_factory):
    d = tmp_path_factory.mktemp("prod")
    ped, data = d / "run00200.mid.gz", d / "run00201.mid.gz"
    simulate_run(ped, 200, 8, kind="pedestal", shape=SHAPE, seed=1, camera_seed=2, pmt=False)
    simulate_run(data, 201, 4, kind="fe55", shape=SHAPE, seed=3, camera_seed=2, pmt=False)
    cfg = load_config("lngs")
    lo, hi = Geometry(SHAPE).rows
    cfg = dataclasses.replace(
        cfg, acceptance=dataclasses.replace(cfg.acceptance, x_min=lo, x_max=hi)
    )
    out = d / "reco.root"
    reconstruct_file(data, compute_pedestal(ped, max_pictures=8), cfg, out_path=out)
    return out


def test_events_has_every_production_branch_with_its_type(reco_file):
    root = pytest.importorskip("ROOT", reason="ROOT 6 (the `root` wheel) is not installed")
    f = root.TFile.Open(str(reco_file))
    tree = f.Get("Events")
    leaves = {leaf.GetName(): leaf for leaf in tree.GetListOfLeaves()}
    wanted = {n: "Int_t" for n in (*EVENT_I, "nSc", "nRedpix")}
    wanted |= {n: "Float_t" for n in (*EVENT_F, *SC_F)} | REDPIX
    missing = sorted(set(wanted) - set(leaves))
    assert not missing, f"branches production writes and we do not: {missing}"
    wrong = {n: leaves[n].GetTypeName() for n, t in wanted.items() if leaves[n].GetTypeName() != t}
    assert not wrong, f"types differ from production's: {wrong}"
    for name in SC_F:
        assert leaves[name].GetLeafCount().GetName() == "nSc", name
    for name in REDPIX:
        assert leaves[name].GetLeafCount().GetName() == "nRedpix", name
    f.Close()


def test_reduced_pixels_and_slow_control_read_as_analyses_do(reco_file):
    root = pytest.importorskip("ROOT", reason="ROOT 6 (the `root` wheel) is not installed")
    f = root.TFile.Open(str(reco_file))
    tree = f.Get("Events")
    saved_pixels = 0
    for entry in tree:  # a macro's loop: each cluster's pixels from its redpixIdx
        assert entry.Lime_pressure == pytest.approx(ENVIRONMENT_INPUTS["P0IIn5"] * 100)
        assert entry.Mixture_Density == pytest.approx(ENVIRONMENT_INPUTS["P3IIn6"] / 1000)
        idx = [int(i) for i in entry.sc_redpixIdx]
        for k in range(entry.nSc):
            if idx[k] < 0:
                assert entry.sc_integral[k] <= 850
                continue
            stop = next((i for i in idx[k + 1 :] if i >= 0), entry.nRedpix)
            assert stop - idx[k] == entry.sc_size[k]
            iz = np.array([entry.redpix_iz[i] for i in range(idx[k], stop)])
            assert iz.sum() == pytest.approx(entry.sc_integral[k], abs=0.05 * len(iz) + 1)
            xs = [entry.redpix_ix[i] for i in range(idx[k], stop)]
            assert min(xs) == entry.sc_xmin[k] and max(xs) == entry.sc_xmax[k]
            saved_pixels += stop - idx[k]
    assert saved_pixels > 0
    assert tree.Draw("redpix_iz", "", "goff") == saved_pixels
    f.Close()


def test_slow_control_follows_inpt_banks_and_refuses_code():
    odb = {
        "Equipment": {
            "Environment": {
                "Settings": {"Names Input": ["P0IIn0", "P0IIn5"]},
                "Variables": {"Input": [2.0, 9.0]},
            }
        },
        "History": {"Display": {"Environment": {
            "Pressure": {"Formula": ["x*100"]},
            "Temperature": {"Formula": ["x", "(x - 1) * 10"]},
        }}},
    }  # fmt: skip
    slow = slowcontrol.SlowControl(odb)
    assert slow.record()["Lime_temperature"] == pytest.approx(10.0)
    assert slow.record()["Lime_pressure"] == pytest.approx(900.0)
    assert slow.record()["Humidity"] == slowcontrol.MISSING  # no channel, no formula
    slow.update(np.array([3.0, 9.5], np.float32))  # an INPT bank
    assert slow.record()["Lime_temperature"] == pytest.approx(20.0)
    assert slow.record()["Lime_pressure"] == pytest.approx(950.0)
    odb["History"]["Display"]["Environment"]["Pressure"]["Formula"] = ["__import__('os')"]
    assert slowcontrol.SlowControl(odb).record()["Lime_pressure"] == slowcontrol.MISSING
