"""The DRS4 corrections the ODB asks for, and what else reconstruction takes from it.

When ``/Configurations/DRS4Correction`` is false the V1742 (DRS4) board wrote its samples
uncorrected; production then corrects the channels whose ``DigitizerOffset`` sits near
−0.3 V: per-cell offsets (a table indexed by capacitor cell, rotated by the trigger's start
index cell, SIC), per-sample offsets, and the spikes the DRS4 chip puts on every channel at
the same sample. The tables are per board and site; without one (``drs4_table`` empty)
only the spikes are removed. ``Exposure`` (seconds) bounds the triggers inside the
camera's global exposure.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numba
import numpy as np

DRS4_MODEL = 1742
CORRECTED_OFFSET_V = (-0.35, -0.25)
"""Channels whose DC offset lies in this open interval are corrected (as production)."""

TICK_NS = {1742: 8.5, 1720: 8.0}
"""Trigger time tag period per board model."""


@dataclass(frozen=True)
class OdbSettings:
    """What PMT reconstruction reads from the begin-of-run ODB."""

    drs4_corrected: bool = True
    offsets_v: tuple[float, ...] = ()
    exposure_ms: float = 300.0

    @classmethod
    def from_odb(cls, odb: dict[str, Any]) -> OdbSettings:
        conf = odb.get("Configurations", {})
        offsets = conf.get("DigitizerOffset", [])
        offsets = offsets if isinstance(offsets, list) else [offsets]
        return cls(
            drs4_corrected=bool(conf.get("DRS4Correction", True)),
            offsets_v=tuple(float(v) for v in offsets),
            exposure_ms=1000.0 * float(conf.get("Exposure", 0.3)),
        )

    def drs4_channels(self) -> np.ndarray:
        """The DRS4 channels to correct (none when the board corrected itself)."""
        if self.drs4_corrected:
            return np.zeros(0, np.int64)
        lo, hi = CORRECTED_OFFSET_V
        return np.array([i for i, v in enumerate(self.offsets_v) if lo < v < hi], np.int64)


@lru_cache(maxsize=4)
def load_drs4_table(path: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-channel ``cell`` and ``sample`` offset tables (channels × samples) from an npz."""
    if not path:
        return None
    with np.load(path) as data:
        return (
            np.ascontiguousarray(data["cell"], dtype=np.float64),
            np.ascontiguousarray(data["sample"], dtype=np.float64),
        )


@numba.njit(cache=True, nogil=True)
def _remove_spikes(block, channels, threshold):
    """Replace 1- and 2-sample spikes present on every listed channel at the same sample
    by the mean of the samples around them."""
    ntrig, _, n = block.shape
    nch = channels.size
    for t in range(ntrig):
        for i in range(1, n - 2):
            one = 0
            two = 0
            for c in range(nch):
                w = block[t, channels[c]]
                if abs(w[i] - w[i - 1]) > threshold and abs(w[i] - w[i + 1]) > threshold:
                    one += 1
                elif (
                    abs(w[i] - w[i - 1]) > threshold
                    and abs(w[i + 1] - w[i + 2]) > threshold
                    and abs(w[i] - w[i + 1]) < threshold
                ):
                    two += 1
            if one == nch:
                for c in range(nch):
                    w = block[t, channels[c]]
                    w[i] = 0.5 * (w[i - 1] + w[i + 1])
            elif two == nch:
                for c in range(nch):
                    w = block[t, channels[c]]
                    w[i] = w[i + 1] = 0.5 * (w[i - 1] + w[i + 2])


@numba.njit(cache=True, nogil=True)
def _subtract_tables(block, channels, sic, cell, sample):
    ntrig, _, n = block.shape
    ncell = cell.shape[1]
    for t in range(ntrig):
        for c in range(channels.size):
            ch = channels[c]
            for s in range(n):
                block[t, ch, s] -= cell[ch, (s + sic[t]) % ncell] + sample[ch, s]


def correct_drs4(
    samples: np.ndarray,
    channels: np.ndarray,
    sic: np.ndarray | None,
    spike_adc: float,
    table: tuple[np.ndarray, np.ndarray] | None,
) -> np.ndarray:
    """A corrected float copy of a DRS4 block (triggers, channels, samples)."""
    block = samples.astype(np.float64)
    channels = channels[channels < block.shape[1]]
    if channels.size == 0:
        return block
    if table is not None:
        if sic is None or len(sic) != block.shape[0]:
            raise ValueError("DRS4 cell correction needs one start index cell per trigger")
        cell, sample = table
        if cell.shape[0] <= channels.max() or sample.shape[1] < block.shape[2]:
            raise ValueError(f"DRS4 table {cell.shape} does not cover channels {channels}")
        _subtract_tables(block, channels, np.asarray(sic, np.int64), cell, sample)
    _remove_spikes(block, channels, float(spike_adc))
    return block
