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
from tests.root6 import requires_root, run_root

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


_LEAVES = """
f = ROOT.TFile.Open(sys.argv[1])
leaves = f.Get("Events").GetListOfLeaves()
counter = lambda leaf: leaf.GetLeafCount().GetName() if leaf.GetLeafCount() else None
print(json.dumps({leaf.GetName(): [leaf.GetTypeName(), counter(leaf)] for leaf in leaves}))
"""


@requires_root
def test_events_has_every_production_branch_with_its_type(reco_file):
    leaves = run_root(_LEAVES, reco_file)
    wanted = {n: "Int_t" for n in (*EVENT_I, "nSc", "nRedpix")}
    wanted |= {n: "Float_t" for n in (*EVENT_F, *SC_F)} | REDPIX
    missing = sorted(set(wanted) - set(leaves))
    assert not missing, f"branches production writes and we do not: {missing}"
    wrong = {n: leaves[n][0] for n, t in wanted.items() if leaves[n][0] != t}
    assert not wrong, f"types differ from production's: {wrong}"
    for name in SC_F:
        assert leaves[name][1] == "nSc", name
    for name in REDPIX:
        assert leaves[name][1] == "nRedpix", name


_ENTRIES = """
f = ROOT.TFile.Open(sys.argv[1])
tree = f.Get("Events")
names = ("Lime_pressure", "Mixture_Density", "nSc", "nRedpix")
arrays = ("sc_redpixIdx", "sc_integral", "sc_size", "sc_xmin", "sc_xmax",
          "redpix_ix", "redpix_iz")
entries = [  # a macro's loop over the tree
    {**{n: getattr(e, n) for n in names}, **{n: list(getattr(e, n)) for n in arrays}}
    for e in tree
]
print(json.dumps({"entries": entries, "drawn": tree.Draw("redpix_iz", "", "goff")}))
"""


@requires_root
def test_reduced_pixels_and_slow_control_read_as_analyses_do(reco_file):
    read = run_root(_ENTRIES, reco_file)
    saved_pixels = 0
    for entry in read["entries"]:  # each cluster's pixels from its redpixIdx
        assert entry["Lime_pressure"] == pytest.approx(ENVIRONMENT_INPUTS["P0IIn5"] * 100)
        assert entry["Mixture_Density"] == pytest.approx(ENVIRONMENT_INPUTS["P3IIn6"] / 1000)
        idx = [int(i) for i in entry["sc_redpixIdx"]]
        for k in range(entry["nSc"]):
            if idx[k] < 0:
                assert entry["sc_integral"][k] <= 850
                continue
            stop = next((i for i in idx[k + 1 :] if i >= 0), entry["nRedpix"])
            assert stop - idx[k] == entry["sc_size"][k]
            iz = np.array(entry["redpix_iz"][idx[k] : stop])
            assert iz.sum() == pytest.approx(entry["sc_integral"][k], abs=0.05 * len(iz) + 1)
            xs = entry["redpix_ix"][idx[k] : stop]
            assert min(xs) == entry["sc_xmin"][k] and max(xs) == entry["sc_xmax"][k]
            saved_pixels += stop - idx[k]
    assert saved_pixels > 0
    assert read["drawn"] == saved_pixels


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
