"""One picture's digitizer banks → the columns of its PMT_Events / PMT_Avg_Events entries.

Every board the DAQ wrote (the V1742 DRS4 "fast" digitizer, 1024 samples at 750 MHz, and
the V1720 "slow" one, 4000 samples at 250 MHz) is analysed trigger by trigger on the PMT
channels, with the DRS4 corrections the ODB asks for. Entries carry the run and picture
number (the link to ``Events``), the trigger index and its time tag (ms), and whether the
trigger fell inside the camera's global exposure.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from cygno.reco.pmt.corrections import (
    DRS4_MODEL,
    TICK_NS,
    OdbSettings,
    correct_drs4,
    load_drs4_table,
)
from cygno.reco.pmt.params import PMTParams
from cygno.reco.pmt.waveform import PEAK_FIELDS, analyse_block, column
from cygno.storage.midas import DigitizerBoard, waveforms

SLOW_MODEL = 1720
AVERAGE_CHANNEL = 9
"""Production's channel number for a trigger's combined (averaged) PMT waveform."""

DYNAMIC_RANGE_MV = {DRS4_MODEL: 1000.0, SLOW_MODEL: 2000.0}
DRS4_SAMPLING_CODES_MHZ = {0: 5000.0, 1: 2500.0, 2: 1000.0, 3: 750.0}
TERMINATION_OHM = 50.0
_PEAK_BRANCH = {
    "position": "Position",
    "height": "Height",
    "half_width": "HalfWidth",
    "full_width": "FullWidth",
    "integral": "Integral",
}
"""Production's ``pmt_peak_<name>`` for each PEAK_FIELDS column."""


@dataclass
class PMTColumns:
    """Entries of one tree: per-waveform columns and their peaks (flat, ``counts`` each)."""

    scalars: dict[str, np.ndarray]
    counts: np.ndarray
    peaks: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.counts)

    @classmethod
    def concatenate(cls, parts: list[PMTColumns]) -> PMTColumns:
        first = parts[0]
        return cls(
            {k: np.concatenate([p.scalars[k] for p in parts]) for k in first.scalars},
            np.concatenate([p.counts for p in parts]),
            {k: np.concatenate([p.peaks[k] for p in parts]) for k in first.peaks},
        )


def _sampling_mhz(board: DigitizerBoard) -> float:
    """The header's sampling word: a V1742 frequency code (0–3) or MHz; 0 → the default."""
    if board.model == DRS4_MODEL and board.sampling in DRS4_SAMPLING_CODES_MHZ:
        return DRS4_SAMPLING_CODES_MHZ[board.sampling]
    if board.sampling > 0:
        return float(board.sampling)
    return 750.0 if board.model == DRS4_MODEL else 250.0


def _peak_columns(peaks: np.ndarray, counts: np.ndarray) -> dict[str, np.ndarray]:
    number = np.arange(len(peaks)) - np.repeat(np.cumsum(counts) - counts, counts) + 1
    out = {"Number": number.astype(np.int32)}
    for i, field in enumerate(PEAK_FIELDS):
        out[_PEAK_BRANCH[field]] = peaks[:, i].astype(np.float32)
    return out


def waveform_id(event: np.ndarray, trigger: np.ndarray, channel: np.ndarray) -> np.ndarray:
    """Production's ``pmt_wf_ID``: the decimal digits of event, trigger, channel in a row."""

    def digits(x: np.ndarray) -> np.ndarray:
        return 10 ** np.floor(np.log10(np.maximum(x, 1)) + 1).astype(np.int64)

    ids = (event * digits(trigger) + trigger) * digits(channel) + channel
    return ids.astype(np.int64)


_warm = False


def warm_up() -> None:
    """Load (or compile) the kernels once per process for the arrays a file gives them
    (read-only u16 views, corrected float copies), outside any timing."""
    global _warm
    if _warm:
        return
    _warm = True
    raw = np.full((1, 2, 16), 100, np.uint16)
    raw.flags.writeable = False
    kwargs = dict(baseline_samples=4, window=2, height_rms=5.0, prominence_fraction=0.25)
    kwargs |= dict(min_width=1.0, tot_rms=5.0, tot_open=2, tot_close=2, full_scale=4095)
    for block in (raw, correct_drs4(raw, np.arange(2), None, 30.0, None)):
        analyse_block(block, np.arange(2), **kwargs)


class PMTReconstructor:
    """Analyses the digitizer banks of a run's pictures (one instance per file)."""

    def __init__(self, params: PMTParams, odb: dict[str, Any], run: int):
        warm_up()
        self.params = params
        self.odb = OdbSettings.from_odb(odb)
        self.run = run
        self.channels = np.asarray(params.channels, dtype=np.int64)
        self.drs4_channels = self.odb.drs4_channels()
        self.drs4_table = load_drs4_table(params.drs4_table) if len(self.drs4_channels) else None

    def _samples(self, board: DigitizerBoard) -> np.ndarray:
        assert board.waveforms is not None
        if board.model == DRS4_MODEL and len(self.drs4_channels):
            return correct_drs4(
                board.waveforms,
                self.drs4_channels,
                board.sic,
                self.params.drs4_spike_adc,
                self.drs4_table,
            )
        return board.waveforms

    def _board(self, number: int, board: DigitizerBoard) -> tuple[PMTColumns, PMTColumns]:
        p = self.params
        if board.model not in (DRS4_MODEL, SLOW_MODEL):
            raise ValueError(f"digitizer model {board.model} is neither V1742 nor V1720")
        if board.nchannels <= self.channels.max():
            raise ValueError(
                f"V{board.model} has {board.nchannels} channels, PMTs are cabled to "
                f"{self.params.channels}"
            )
        fast = board.model == DRS4_MODEL
        t0 = time.perf_counter()
        wf, peaks, avg, avg_peaks = analyse_block(
            self._samples(board),
            self.channels,
            baseline_samples=p.baseline_samples_fast if fast else p.baseline_samples_slow,
            window=p.resample,
            height_rms=p.height_rms,
            prominence_fraction=p.prominence_fraction,
            min_width=p.min_width,
            tot_rms=p.tot_rms,
            tot_open=p.tot_open,
            tot_close=p.tot_close,
            full_scale=(1 << board.vertical_resolution) - 1 if board.vertical_resolution else 0,
        )
        seconds = time.perf_counter() - t0
        ntrig, nch = board.ntriggers, len(self.channels)
        ttt_ms = np.asarray(board.ttt, np.float64) * TICK_NS.get(board.model, 8.0) / 1e6
        inside = (ttt_ms >= p.global_exposure_start_ms) & (ttt_ms <= self.odb.exposure_ms)
        adc_mv = DYNAMIC_RANGE_MV[board.model] / (1 << max(board.vertical_resolution, 1))
        sample_ns = 1000.0 / _sampling_mhz(board)
        t_each = np.float32(seconds / max(1, ntrig * (nch + 1)))

        def common(trigger: np.ndarray, channel: np.ndarray) -> dict[str, np.ndarray]:
            n = len(trigger)
            return {
                "pmt_wf_run": np.full(n, self.run, np.int32),
                "pmt_wf_event": np.full(n, number, np.int32),
                "pmt_wf_trigger": trigger.astype(np.int32),
                "pmt_wf_channel": channel.astype(np.int32),
                "pmt_wf_insideGE": inside[trigger].astype(np.int32),
                "pmt_wf_sampling": np.full(n, board.nsamples, np.int32),
                "pmt_wf_TTT": ttt_ms[trigger].astype(np.float32),
            }

        def tot_and_time(rows: np.ndarray) -> dict[str, np.ndarray]:
            return {
                "pmt_TOT_time": column(rows, "tot_time").astype(np.float32),
                "pmt_TOT_area": column(rows, "tot_area").astype(np.float32),
                "t_waveforms": np.full(len(rows), t_each, np.float32),
            }

        trigger = np.repeat(np.arange(ntrig), nch)
        channel = np.tile(self.channels, ntrig)
        integral = column(wf, "integral")
        scalars = common(trigger, channel)
        scalars["pmt_wf_ID"] = waveform_id(number, trigger, channel).astype(np.int32)
        scalars |= {
            "pmt_wf_baseline": column(wf, "baseline").astype(np.float32),
            "pmt_wf_RMS": column(wf, "rms").astype(np.float32),
            "pmt_wf_tot_integral": integral.astype(np.float32),
            "pmt_wf_tot_charge": (integral * adc_mv * sample_ns / TERMINATION_OHM).astype(
                np.float32
            ),
            "pmt_wf_max_ampl": column(wf, "max_ampl").astype(np.float32),
            "pmt_wf_saturated": column(wf, "saturated").astype(np.int32),
        }
        scalars |= tot_and_time(wf)
        counts = column(wf, "npeaks").astype(np.int64)
        per_wf = PMTColumns(scalars, counts, _peak_columns(peaks, counts))

        avg_trigger = np.arange(ntrig)
        avg_scalars = common(avg_trigger, np.full(ntrig, AVERAGE_CHANNEL)) | tot_and_time(avg)
        avg_counts = column(avg, "npeaks").astype(np.int64)
        averaged = PMTColumns(avg_scalars, avg_counts, _peak_columns(avg_peaks, avg_counts))
        return per_wf, averaged

    def event(self, number: int, event: Any) -> tuple[PMTColumns, PMTColumns] | None:
        """The picture's PMT entries and per-trigger averages; None without digitizer banks."""
        if "DGH0" not in event.banks or "DIG0" not in event.banks:
            return None
        try:
            parts = [self._board(number, board) for board in waveforms(event)]
        except ValueError as error:
            raise ValueError(f"run {self.run} picture {number}: DGH0/DIG0: {error}") from error
        if not parts:
            return None
        return (
            PMTColumns.concatenate([p[0] for p in parts]),
            PMTColumns.concatenate([p[1] for p in parts]),
        )
