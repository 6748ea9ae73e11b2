"""File-level reconstruction: simulated MIDAS run → ROOT, chunks + merge, and the CLI."""

from __future__ import annotations

import dataclasses

import awkward as ak
import numpy as np
import pytest
import uproot
from typer.testing import CliRunner

from cygno.cli import _register, app
from cygno.reco import rootio
from cygno.reco.config import load_config, reco_version
from cygno.reco.pedestal import PedestalMaps, compute_pedestal
from cygno.reco.reconstruct import reconstruct_file, reconstruct_picture
from cygno.reco.simulate import Geometry
from cygno.reco.simulate.run import RunTruth, simulate_run, truth_name
from cygno.storage.checksum import adler32_of
from tests.root6 import EVENTS_SUMMARY, requires_root, run_root

SHAPE = (512, 512)
N = 8


@pytest.fixture(scope="module")
def run_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("runs")
    ped = d / "run00100.mid.gz"
    data = d / "run00101.mid.gz"
    simulate_run(ped, 100, 12, kind="pedestal", shape=SHAPE, seed=1, camera_seed=2, pmt=False)
    simulate_run(data, 101, N, kind="mixed", shape=SHAPE, seed=4, camera_seed=2, pmt=False,
                 spark_fraction=0.25)  # fmt: skip
    truth = RunTruth.load(d / truth_name(101))
    return ped, data, truth


@pytest.fixture(scope="module")
def config():
    cfg = load_config("lngs")
    lo, hi = Geometry(SHAPE).rows  # LIME's acceptance rows scaled to the small picture
    return dataclasses.replace(
        cfg, acceptance=dataclasses.replace(cfg.acceptance, x_min=lo, x_max=hi)
    )


def _arrays(path):
    with uproot.open(path) as f:
        return f["Events"].arrays()


def test_file_to_root_with_params_and_vetoes(run_files, config, tmp_path):
    ped_path, data, truth = run_files
    pedestal = compute_pedestal(ped_path, max_pictures=12)
    seen = []
    out = tmp_path / "reco.root"
    summary = reconstruct_file(data, pedestal, config, out_path=out, input_adler32=adler32_of(data),
                               progress=lambda *a: seen.append(a))  # fmt: skip
    sparks = [p.index for p in truth.pictures if p.spark]
    assert 0 < len(sparks) < N
    assert summary.pictures == N and summary.vetoed == len(sparks) and len(seen) == N
    assert summary.seconds_per_picture == pytest.approx(summary.seconds / N)
    events = _arrays(out)
    assert events["event"].tolist() == [i for i in range(N) if i not in sparks]
    assert set(events["run"].tolist()) == {101} and set(events["pedestal_run"].tolist()) == {100}
    assert ak.sum(events["nSc"]) == summary.clusters > 0
    assert ak.all(ak.num(events["sc_integral"]) == events["nSc"])
    # sorted by integral, descending, within each picture
    assert all(list(v) == sorted(v, reverse=True) for v in events["sc_integral"].tolist())
    params = rootio.read_params(out)
    assert params["reco_version"] == reco_version(config)
    assert params["input_adler32"] == adler32_of(data) and params["input_uri"] == str(data)
    assert params["params"]["picture"]["nsigma"] == 0.6


def test_chunks_merged_equal_single_run(run_files, config, tmp_path):
    ped_path, data, _ = run_files
    pedestal = compute_pedestal(ped_path, max_pictures=12)
    single = tmp_path / "all.root"
    reconstruct_file(data, pedestal, config, out_path=single)
    parts = []
    for a, b in ((0, 3), (3, 6), (6, N)):
        part = tmp_path / f"chunk{a}.root"
        with open(data, "rb") as fileobj:  # file objects work as well as paths
            s = reconstruct_file(fileobj, pedestal, config, events=(a, b), out_path=part)
        assert s.pictures == b - a
        parts.append(part)
    merged = rootio.merge(parts[::-1], tmp_path / "merged.root")
    one, two = _arrays(single), _arrays(merged)
    for field in one.fields:
        if not field.startswith("t_"):
            assert ak.to_list(one[field]) == ak.to_list(two[field]), field
    assert rootio.read_params(merged)["events"] == [0, N]


def test_cli_pedestal_and_reco(run_files, tmp_path):
    ped_path, data, truth = run_files
    _register()
    runner = CliRunner()
    ped_npz = tmp_path / "ped.npz"
    result = runner.invoke(
        app, ["pedestal", str(ped_path), "-o", str(ped_npz), "--max-pictures", "10"]
    )
    assert result.exit_code == 0, result.output
    maps = PedestalMaps.load(ped_npz)
    assert maps.n_pictures == 10 and maps.run == 100
    out = tmp_path / "cli.root"
    cfg = tmp_path / "small.toml"
    lo, hi = Geometry(SHAPE).rows
    cfg.write_text(f"[acceptance]\nx_min = {lo}\nx_max = {hi}\n")
    args = ["reco", str(data), "--pedestal", str(ped_npz), "--config", str(cfg),
            "--events", "2:6", "-o", str(out)]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    sparks = {p.index for p in truth.pictures if p.spark}
    assert _arrays(out)["event"].tolist() == [i for i in range(2, 6) if i not in sparks]
    assert "pictures" in result.output and "s / picture" in result.output
    # a pedestal run's MIDAS file is accepted in place of the .npz
    args = ["reco", str(data), "--pedestal", str(ped_path), "--config", str(cfg),
            "--events", "0:1", "-o", str(tmp_path / "b.root")]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    bad = runner.invoke(app, ["reco", str(data), "--pedestal", str(ped_npz), "--events", "5:2",
                              "-o", str(tmp_path / "c.root")])  # fmt: skip
    assert bad.exit_code != 0
    assert not (tmp_path / "c.root").exists()
    assert np.isfinite(maps.sigma).all()


def test_energy_calibration_and_vignetting(tmp_path):
    shape = (256, 256)
    rng = np.random.default_rng(5)
    sigma = np.full(shape, 1.5, np.float32)
    mean = np.full(shape, 100.0, np.float32)
    frame = np.rint(mean + rng.standard_normal(shape) * sigma)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    frame += 300 * np.exp(-((yy - 128) ** 2 + (xx - 60) ** 2) / (2 * 5.0**2))
    frame = frame.astype(np.uint16)
    pedestal = PedestalMaps(mean, sigma, 1, 100)
    base = load_config("lngs")
    acc = dataclasses.replace(base.acceptance, x_min=0, x_max=256)
    off = dataclasses.replace(base, acceptance=acc)
    _, clusters = reconstruct_picture(frame, pedestal, off)
    assert len(clusters["sc_energy"]) == 1 and clusters["sc_energy"][0] == -1.0
    light = np.ones((16, 16))
    light[8, 12] = 0.8  # the spot sits at x = 128, y = 255 − 60 = 195 → map cell (8, 12)
    np.savez(tmp_path / "light.npz", map=light)
    cal = dataclasses.replace(
        base.calibration,
        enabled=True,
        kev_per_count=0.002,
        vignetting_map=str(tmp_path / "light.npz"),
    )
    on = dataclasses.replace(off, calibration=cal)
    _, clusters = reconstruct_picture(frame, pedestal, on)
    assert clusters["sc_xmean"][0] == pytest.approx(128, abs=1)
    assert clusters["sc_ymean"][0] == pytest.approx(195, abs=1)
    expected = clusters["sc_integral"][0] * 0.002 * 0.8
    assert clusters["sc_energy"][0] == pytest.approx(expected, rel=1e-5)
    assert on.hash != off.hash


@requires_root
def test_reco_and_merged_files_open_in_root6(run_files, config, tmp_path):
    ped_path, data, _ = run_files
    pedestal = compute_pedestal(ped_path, max_pictures=12)
    parts = []
    for a, b in ((0, 4), (4, N)):
        parts.append(tmp_path / f"c{a}.root")
        reconstruct_file(data, pedestal, config, events=(a, b), out_path=parts[-1])
    merged = rootio.merge(parts, tmp_path / "merged.root")
    expected = int(ak.sum(_arrays(merged)["nSc"]))
    read = run_root(EVENTS_SUMMARY, merged)
    assert read["class"] == "TTree"
    assert read["drawn"] == expected > 0
    assert read["params"] == 1
    assert "reco_version" in read["params_json"]
