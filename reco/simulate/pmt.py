"""PMT waveforms as LIME's digitizers record them: ``DGH0`` header + ``DIG0`` samples.

Two boards, as on LIME: a V1720 (250 MHz, 4000 samples, slow) and a V1742 DRS4
(750 MHz, 1024 samples, fast). Channels 0–3 are the four PMTs looking at the GEM plane
from its corners; each track that lit the picture gives one trigger whose negative
pulses are shared among the PMTs by distance and spread in time by the track's extent
along the drift. ``DGH0`` uses layout (1) of docs/midas.md: ``[nboards]`` then per board
``[model, nsamples, nchannels, ntriggers, vertical resolution, sampling (MHz),
offsets[nch], TTT[ntrig], SIC[ntrig] (V1742 only)]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cygno.reco.simulate.tracks import PIXEL_MM, TruthTrack

DRIFT_VELOCITY_CM_PER_US = 5.0
PMT_AREA_PER_LIGHT = 0.5
"""Summed pulse area over the four PMTs (ADC·samples at 250 MHz) per ADC of picture light."""


@dataclass(frozen=True)
class Board:
    """One digitizer board as the header describes it."""

    model: int
    nsamples: int
    nchannels: int
    sampling_mhz: int
    baseline: float
    noise: float
    bits: int = 12

    @property
    def full_scale(self) -> int:
        return (1 << self.bits) - 1


LIME_BOARDS = (
    Board(model=1720, nsamples=4000, nchannels=8, sampling_mhz=250, baseline=3700.0, noise=2.0),
    Board(model=1742, nsamples=1024, nchannels=32, sampling_mhz=750, baseline=3400.0, noise=3.0),
)
CHANNEL_OFFSETS = -0.4
"""DC offset (V) programmed on every channel; the ODB's DigitizerOffset."""

TRIGGER_FRACTION = 0.2
"""Where in the window the trigger sits (pre-trigger fraction)."""


def _pmt_shares(track: TruthTrack, shape: tuple[int, int]) -> np.ndarray:
    """Fraction of the light seen by each of the four corner PMTs (inverse-square)."""
    height, width = shape
    corners = np.array([[0, 0], [0, width], [height, 0], [height, width]], dtype=float)
    depth = 0.6 * max(shape)  # PMTs sit behind the GEM plane, off axis
    d2 = ((corners - [track.x, track.y]) ** 2).sum(axis=1) + depth**2
    shares = 1.0 / d2
    return shares / shares.sum()


def _arrivals(rng: np.random.Generator, track: TruthTrack) -> tuple[np.ndarray, np.ndarray]:
    """Arrival times (µs after the first light) and weights of light along the drift."""
    extent_cm = track.length_px * PIXEL_MM / 10.0
    dz = extent_cm * np.tan(rng.uniform(0.0, 1.2)) if extent_cm > 0 else 0.0
    spread_us = dz / DRIFT_VELOCITY_CM_PER_US
    n = 1 if spread_us == 0 else 24
    times = np.linspace(0.0, spread_us, n)
    weights = rng.gamma(4.0, 1.0, n)  # clustering along the track
    return times, weights / weights.sum()


def _pulse_kernel(tau: float, length: int) -> np.ndarray:
    """Unit-area negative-going PMT response (t/τ)² e^(−t/τ), in samples."""
    t = np.arange(length, dtype=float)
    kernel = (t / tau) ** 2 * np.exp(-t / tau)
    return kernel / kernel.sum()


def _board_block(
    rng: np.random.Generator,
    board: Board,
    triggers: Sequence[TruthTrack],
    shape: tuple[int, int],
) -> np.ndarray:
    """Samples of one board: (ntriggers, nchannels, nsamples) uint16."""
    ntrig = max(1, len(triggers))
    waves = board.baseline + board.noise * rng.standard_normal(
        (ntrig, board.nchannels, board.nsamples)
    )
    ns_per_sample = 1000.0 / board.sampling_mhz
    kernel = _pulse_kernel(tau=8.0 / ns_per_sample, length=int(120.0 / ns_per_sample) + 1)
    area_scale = PMT_AREA_PER_LIGHT * board.sampling_mhz / 250.0
    start = int(TRIGGER_FRACTION * board.nsamples)
    for i, track in enumerate(triggers):
        times, weights = _arrivals(rng, track)
        train = np.zeros(board.nsamples)
        idx = start + np.round(times * 1000.0 / ns_per_sample).astype(int)
        keep = idx < board.nsamples
        np.add.at(train, idx[keep], weights[keep])
        pulse = np.convolve(train, kernel)[: board.nsamples]
        shares = _pmt_shares(track, shape) * track.light * area_scale
        waves[i, :4] -= shares[:, None] * pulse[None, :]
    np.clip(np.rint(waves), 0, board.full_scale, out=waves)
    return waves.astype(np.uint16)


def pmt_banks(
    rng: np.random.Generator,
    tracks: Sequence[TruthTrack],
    shape: tuple[int, int],
    first_ttt: int,
    boards: Sequence[Board] = LIME_BOARDS,
) -> list[tuple[str, np.ndarray]]:
    """``DGH0`` (u32, layout 1) and ``DIG0`` (u16) banks for one picture's triggers.

    One trigger per light-emitting track (sparks included); a picture without tracks
    still has the one random trigger the DAQ takes with every picture.
    """
    triggers = [t for t in tracks if t.light > 0]
    ntrig = max(1, len(triggers))
    header: list[int] = [len(boards)]
    samples: list[np.ndarray] = []
    for board in boards:
        ticks = 8 if board.model == 1720 else 17  # trigger time tag period, ns
        ttt = (first_ttt // ticks + np.sort(rng.integers(0, 40_000_000, ntrig))) & 0x7FFFFFFF
        header += [board.model, board.nsamples, board.nchannels, ntrig, board.bits]
        header += [board.sampling_mhz]
        header += [_offset_word(CHANNEL_OFFSETS)] * board.nchannels
        header += ttt.tolist()
        if board.model == 1742:
            header += rng.integers(0, 1024, ntrig).tolist()  # DRS4 start index cell
        samples.append(_board_block(rng, board, triggers, shape).ravel())
    return [
        ("DGH0", np.asarray(header, dtype=np.uint32)),
        ("DIG0", np.concatenate(samples)),
    ]


def _offset_word(volts: float) -> int:
    """The 16-bit DAC word CAEN boards use for a DC offset in [−0.5, 0.5] V."""
    return round((volts + 0.5) * 0xFFFF)
