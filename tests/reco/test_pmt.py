"""PMT waveform reconstruction: known pulses (times, amplitudes, pile-up, saturation), empty
waveforms, the DRS4 corrections the ODB asks for, and the PMT trees of a simulated run
through `reconstruct_file`, chunk merge and `cygno reco`."""

from __future__ import annotations

import numpy as np
import pytest
import uproot
from typer.testing import CliRunner

from cygno.cli import _register, app
from cygno.reco import quality
from cygno.reco.config import load_config
from cygno.reco.pedestal import pedestal_from_frames
from cygno.reco.pmt import AVG_TREE, PMT_TREE, PMTParams, PMTReconstructor
from cygno.reco.reconstruct import reconstruct_file
from cygno.reco.rootio import merge
from cygno.reco.simulate import make_camera, simulate_picture
from cygno.reco.simulate.pmt import LIME_BOARDS, TRIGGER_FRACTION
from cygno.reco.simulate.run import simulate_run
from cygno.storage.midas import Bank, encode_dgh0
from cygno.storage.midas.dgh0 import DigitizerBoard

SHAPE = (256, 256)
BASELINE = 3400.0
TAU = 8.0  # samples; the pulse peaks 2·TAU after it starts


def _pulse(n: int, start: float, amplitude: float) -> np.ndarray:
    """A negative-going PMT pulse (t/τ)² e^(−t/τ) with its minimum −amplitude at start+2τ."""
    x = np.clip(np.arange(n) - start, 0, None) / TAU
    shape = x**2 * np.exp(-x)
    return -amplitude * shape / shape.max()


def _event(blocks: dict[int, np.ndarray], sic: int = 0):
    """An event-like object with DGH0/DIG0 banks for boards {model: (ntrig, nch, n) u16}."""
    boards = []
    for model, block in blocks.items():
        ntrig, nch, n = block.shape
        boards.append(
            DigitizerBoard(
                model, n, nch, ntrig, 12, 750 if model == 1742 else 250,
                np.full(nch, 0x3333), np.arange(ntrig) * 30_000_000,
                sic=np.full(ntrig, sic) if model == 1742 else None,
            )
        )  # fmt: skip
    samples = np.concatenate([b.ravel() for b in blocks.values()]).astype(np.uint16)

    class Event:
        def __init__(self):
            self.banks = {
                "DGH0": Bank("DGH0", 6, encode_dgh0(boards, layout=1)),
                "DIG0": Bank("DIG0", 4, samples),
            }

    return Event()


def _block(rng, ntrig: int, n: int, pulses=(), noise: float = 3.0) -> np.ndarray:
    """Noise on a baseline plus `pulses` [(trigger, channel, start, amplitude)], 12 bits."""
    waves = BASELINE + noise * rng.standard_normal((ntrig, 8, n))
    for trig, ch, start, amplitude in pulses:
        waves[trig, ch] += _pulse(n, start, amplitude)
    return np.clip(np.rint(waves), 0, 4095).astype(np.uint16)


def _analyse(blocks, odb=None, params=PMTParams()):
    reco = PMTReconstructor(params, odb or {"Configurations": {"Exposure": 0.3}}, run=42)
    result = reco.event(7, _event(blocks))
    assert result is not None
    return result


def _peaks_of(columns, trigger: int, channel: int, sampling: int) -> dict[str, np.ndarray]:
    s = columns.scalars
    row = np.flatnonzero(
        (s["pmt_wf_trigger"] == trigger)
        & (s["pmt_wf_channel"] == channel)
        & (s["pmt_wf_sampling"] == sampling)
    )
    assert row.size == 1
    start = int(columns.counts[: row[0]].sum())
    stop = start + int(columns.counts[row[0]])
    return {k: v[start:stop] for k, v in columns.peaks.items()} | {"row": row[0]}


def test_known_pulse_position_amplitude_width_and_time_over_threshold():
    rng = np.random.default_rng(1)
    fast = _block(rng, 2, 1024, [(0, 1, 300, 250.0), (1, 2, 600, 80.0)])
    slow = _block(rng, 2, 4000, [(1, 0, 1500, 400.0)], noise=2.0)
    wf, avg = _analyse({1742: fast, 1720: slow})
    for trig, ch, n, start, amplitude in ((0, 1, 1024, 300, 250), (1, 2, 1024, 600, 80)):
        p = _peaks_of(wf, trig, ch, n)
        assert len(p["Position"]) == 1, p
        assert p["Position"][0] == pytest.approx(start + 2 * TAU, abs=1.5)
        # the 10-sample moving average lowers a narrow pulse's top a little
        assert p["Height"][0] == pytest.approx(amplitude, rel=0.12)
        assert 2 * TAU < p["HalfWidth"][0] < 4 * TAU < p["FullWidth"][0]
        area = -_pulse(n, start, amplitude).sum()
        assert p["Integral"][0] == pytest.approx(area, rel=0.1)
        row = p["row"]
        assert wf.scalars["pmt_wf_baseline"][row] == pytest.approx(BASELINE, abs=1.0)
        level = 5 * wf.scalars["pmt_wf_RMS"][row]
        above = np.count_nonzero(-_pulse(n, start, amplitude) > level)
        assert wf.scalars["pmt_TOT_time"][row] == pytest.approx(above, abs=6)
        assert wf.scalars["pmt_wf_saturated"][row] == 0
    p = _peaks_of(wf, 1, 0, 4000)
    assert p["Position"][0] == pytest.approx(1500 + 2 * TAU, abs=1.5)
    # every waveform is reported, links to run and picture, peaks only where pulses are
    assert len(wf) == 2 * 2 * 4 and set(wf.scalars["pmt_wf_event"]) == {7}
    assert set(wf.scalars["pmt_wf_run"]) == {42}
    assert wf.counts.sum() == 3
    assert np.allclose(wf.scalars["pmt_wf_RMS"], 3.0 / np.sqrt(10), rtol=0.5)
    # one averaged waveform per trigger and board; the average of a lit trigger peaks there
    assert len(avg) == 4 and set(avg.scalars["pmt_wf_channel"]) == {9}
    assert _peaks_of(avg, 0, 9, 1024)["Position"][0] == pytest.approx(316, abs=2)


def test_pile_up_resolves_two_pulses():
    rng = np.random.default_rng(2)
    fast = _block(rng, 1, 1024, [(0, 0, 300, 200.0), (0, 0, 360, 140.0)])
    wf, _ = _analyse({1742: fast})
    p = _peaks_of(wf, 0, 0, 1024)
    assert len(p["Position"]) == 2
    assert p["Position"] == pytest.approx([300 + 2 * TAU, 360 + 2 * TAU], abs=2.0)
    assert p["Height"][0] > p["Height"][1] > 100
    assert list(p["Number"]) == [1, 2]


def test_saturated_pulse_is_one_peak_at_the_plateau():
    rng = np.random.default_rng(3)
    fast = _block(rng, 1, 1024, [(0, 3, 400, 8000.0)])
    wf, _ = _analyse({1742: fast})
    p = _peaks_of(wf, 0, 3, 1024)
    raw = fast[0, 3]
    plateau = np.flatnonzero(raw == 0)
    assert plateau.size > 10
    assert len(p["Position"]) == 1
    assert plateau[0] <= p["Position"][0] <= plateau[-1]
    assert p["Height"][0] == pytest.approx(BASELINE, rel=0.01)
    assert wf.scalars["pmt_wf_saturated"][p["row"]] == 1


def test_empty_waveforms_have_no_peaks():
    rng = np.random.default_rng(4)
    wf, avg = _analyse({1742: _block(rng, 20, 1024), 1720: _block(rng, 20, 4000, noise=2.0)})
    assert len(wf) == 2 * 20 * 4
    assert wf.counts.sum() == 0 and avg.counts.sum() == 0
    assert not wf.scalars["pmt_TOT_time"].any()
    assert np.abs(wf.scalars["pmt_wf_baseline"] - BASELINE).max() < 1.5


def test_drs4_spikes_removed_when_the_odb_says_the_board_did_not_correct():
    rng = np.random.default_rng(5)
    fast = _block(rng, 2, 1024).astype(np.int32)
    fast[:, :, [200, 500, 501, 800]] -= 120  # the DRS4 chip's spikes: every channel, same cell
    fast = fast.astype(np.uint16)
    offsets = [-0.3] * 8
    raw_odb = {"Configurations": {"Exposure": 0.3, "DRS4Correction": False}}
    raw_odb["Configurations"]["DigitizerOffset"] = offsets
    corrected_odb = {"Configurations": {"Exposure": 0.3, "DRS4Correction": True}}
    corrected_odb["Configurations"]["DigitizerOffset"] = offsets
    params = PMTParams(min_width=1.0)
    uncorrected, _ = _analyse({1742: fast}, corrected_odb, params)
    assert uncorrected.counts.sum() > 0  # spikes look like pulses when left in
    cleaned, _ = _analyse({1742: fast}, raw_odb, params)
    assert cleaned.counts.sum() == 0


def test_drs4_cell_table_rotated_by_the_start_index_cell(tmp_path):
    n = 1024
    cell = np.zeros((8, n))
    cell[2, 100] = -500.0  # cell 100 of channel 2 reads 500 ADC low
    table = tmp_path / "drs4.npz"
    np.savez(table, cell=cell, sample=np.zeros((8, n)))
    sic = 624  # cell 100 is read out as sample (100 − sic) mod 1024 = 500
    block = np.full((1, 8, n), 3400, np.uint16)
    block[0, 2, 500:512] -= 500  # a wide dip starting at cell 100
    odb = {"Configurations": {"DRS4Correction": False, "DigitizerOffset": [-0.3] * 8}}
    reco = PMTReconstructor(PMTParams(drs4_table=str(table)), odb, run=1)
    wf, _ = reco.event(0, _event({1742: block}, sic=sic))
    # only the sample in cell 100 is corrected: the other 11 still form a pulse
    p = _peaks_of(wf, 0, 2, 1024)
    assert len(p["Position"]) == 1
    assert wf.counts.sum() == 1


def test_bad_digitizer_bank_names_run_and_picture():
    rng = np.random.default_rng(6)
    event = _event({1742: _block(rng, 1, 1024)})
    event.banks["DIG0"] = Bank("DIG0", 4, event.banks["DIG0"].data[:-5])
    reco = PMTReconstructor(PMTParams(), {}, run=42)
    with pytest.raises(ValueError, match="run 42 picture 3: DGH0/DIG0"):
        reco.event(3, event)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("pmtrun")
    raw = d / "run00031.mid.gz"
    simulate_run(raw, 31, 6, kind="mixed", shape=SHAPE, seed=3, camera_seed=2)
    rng = np.random.default_rng(1)
    camera = make_camera(2, SHAPE)
    frames = (simulate_picture(rng, SHAPE, kind="pedestal", camera=camera)[0] for _ in range(8))
    pedestal = pedestal_from_frames(frames, 8, run=30)
    ped = d / "ped.npz"
    pedestal.save(ped)
    return raw, pedestal, ped


def test_run_file_gets_pmt_trees_linked_to_events_and_merge_keeps_them(small_run, tmp_path):
    raw, pedestal, _ = small_run
    config = load_config("mc")
    whole = tmp_path / "whole.root"
    reconstruct_file(raw, pedestal, config, out_path=whole)
    chunks = [tmp_path / "c1.root", tmp_path / "c0.root"]
    reconstruct_file(raw, pedestal, config, (3, 6), chunks[0])
    reconstruct_file(raw, pedestal, config, (0, 3), chunks[1])
    merged = merge(chunks, tmp_path / "merged.root")
    with uproot.open(whole) as a, uproot.open(merged) as b:
        for tree in (PMT_TREE, AVG_TREE):
            x, y = a[tree].arrays(library="ak"), b[tree].arrays(library="ak")
            assert len(x) > 0
            for name in x.fields:
                if name != "t_waveforms":
                    assert x[name].to_list() == y[name].to_list(), name
        pmt = a[PMT_TREE].arrays(library="np")
        events = a["Events"].arrays(["run", "event"], library="np")
    assert set(pmt["pmt_wf_run"]) == {31}
    assert set(events["event"]) <= set(pmt["pmt_wf_event"]) == set(range(6))
    boards = {b.nsamples for b in LIME_BOARDS}
    assert set(pmt["pmt_wf_sampling"]) == boards
    # the simulator's light arrives at the trigger position of each board's window
    for n in boards:
        pos = np.concatenate(pmt["pmt_peak_Position"][pmt["pmt_wf_sampling"] == n])
        assert len(pos) > 0
        assert np.median(pos) == pytest.approx(TRIGGER_FRACTION * n, abs=0.15 * n)


def test_run_without_digitizer_banks_has_no_pmt_tree(tmp_path, small_run):
    _, pedestal, _ = small_run
    raw = tmp_path / "run00032.mid.gz"
    simulate_run(raw, 32, 2, kind="mixed", shape=SHAPE, seed=4, camera_seed=2, pmt=False)
    out = reconstruct_file(raw, pedestal, load_config("mc"), out_path=tmp_path / "r.root")
    assert out.pictures == 2
    with uproot.open(tmp_path / "r.root") as f:
        assert PMT_TREE not in f and "Events" in f
    histograms = quality.build_histograms(quality.read_reco(tmp_path / "r.root"))
    assert not any(name.startswith("pmt_") for name in histograms)


def test_quality_histograms_of_the_pmt_tree(small_run, tmp_path):
    raw, pedestal, _ = small_run
    out = tmp_path / "q.root"
    reconstruct_file(raw, pedestal, load_config("mc"), out_path=out)
    with uproot.open(out) as f:
        pmt = f[PMT_TREE].arrays(["pmt_wf_nPeaks", "pmt_wf_event"], library="np")
    histograms = quality.build_histograms(quality.read_reco(out))
    amplitude = histograms["pmt_peak_amplitude"]
    tot = histograms["pmt_tot_time"]
    per_event = histograms["pmt_peaks_per_event"]
    total_peaks = int(pmt["pmt_wf_nPeaks"].sum())
    assert total_peaks > 0
    assert amplitude.sum(flow=True) == total_peaks
    assert tot.sum(flow=True) == len(pmt["pmt_wf_nPeaks"])
    assert per_event.sum(flow=True) == len(set(pmt["pmt_wf_event"]))
    counts = per_event.values(flow=True)
    centres = np.concatenate([[-1], per_event.axes[0].centers, [per_event.axes[0].edges[-1]]])
    assert (counts * np.floor(centres)).sum() == total_peaks


def test_cygno_reco_writes_the_pmt_tree(small_run, tmp_path):
    raw, _, ped = small_run
    out = tmp_path / "cli.root"
    _register()
    result = CliRunner().invoke(
        app, ["reco", str(raw), "--pedestal", str(ped), "--config", "mc", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    with uproot.open(out) as f:
        assert f[PMT_TREE].num_entries > 0
        assert f[PMT_TREE]["pmt_wf_nPeaks"].typename == "int32_t"
