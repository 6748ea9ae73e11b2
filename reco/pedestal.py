"""Per-pixel pedestal mean and noise from a pedestal run, in one streaming pass.

Accumulators are int64 sums of raw values and of their squares: exact for uint16
pictures (no cancellation as with float sum/sumsq, and cheaper than Welford), and
converted to float64 once at the end. Maps are kept in frame orientation, like the
raw pictures they are subtracted from.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import numba as nb
import numpy as np

from cygno.storage.midas import MidasFile


@dataclass(frozen=True)
class PedestalMaps:
    mean: np.ndarray  # float32, frame orientation
    sigma: np.ndarray  # float32, sample standard deviation
    run: int | None
    n_pictures: int

    @property
    def shape(self) -> tuple[int, int]:
        return self.mean.shape  # type: ignore[return-value]

    def save(self, target: str | os.PathLike | BinaryIO) -> None:
        np.savez(
            target,
            mean=self.mean,
            sigma=self.sigma,
            run=np.int64(-1 if self.run is None else self.run),
            n_pictures=np.int64(self.n_pictures),
        )

    @classmethod
    def load(cls, source: str | os.PathLike | BinaryIO) -> PedestalMaps:
        with np.load(source) as data:
            run = int(data["run"])
            return cls(
                mean=data["mean"].astype(np.float32, copy=False),
                sigma=data["sigma"].astype(np.float32, copy=False),
                run=None if run < 0 else run,
                n_pictures=int(data["n_pictures"]),
            )


@nb.njit(cache=True, nogil=True)
def _accumulate(frame, total, total_sq):
    h, w = frame.shape
    for i in range(h):
        for j in range(w):
            v = np.int64(frame[i, j])
            total[i, j] += v
            total_sq[i, j] += v * v


@nb.njit(cache=True, nogil=True)
def _finish(total, total_sq, n, mean, sigma):
    h, w = total.shape
    for i in range(h):
        for j in range(w):
            s = total[i, j]
            mean[i, j] = s / n
            if n > 1:
                # exact integer numerator: n·Σx² − (Σx)² ≥ 0
                var = (n * total_sq[i, j] - s * s) / (n * (n - 1.0))
                sigma[i, j] = np.sqrt(max(var, 0.0))
            else:
                sigma[i, j] = 0.0


def pedestal_from_frames(
    frames: Iterable[np.ndarray],
    max_pictures: int = 200,
    run: int | None = None,
    progress: Callable[[int], Any] | None = None,
) -> PedestalMaps:
    """Mean and sample std of the first `max_pictures` frames (all the same shape)."""
    total = total_sq = None
    n = 0
    for frame in frames:
        if n >= max_pictures:
            break
        if total is None:
            total = np.zeros(frame.shape, np.int64)
            total_sq = np.zeros(frame.shape, np.int64)
        elif frame.shape != total.shape:
            raise ValueError(f"picture {n} has shape {frame.shape}, expected {total.shape}")
        _accumulate(frame, total, total_sq)
        n += 1
        if progress is not None:
            progress(n)
    if total is None:
        raise ValueError("no pictures to compute a pedestal from")
    mean = np.empty(total.shape, np.float32)
    sigma = np.empty(total.shape, np.float32)
    _finish(total, total_sq, n, mean, sigma)
    return PedestalMaps(mean=mean, sigma=sigma, run=run, n_pictures=n)


def _pictures(midas: MidasFile, camera: int) -> Iterator[np.ndarray]:
    bank = f"CAM{camera}"
    for event in midas:
        if event.is_picture and bank in event.banks:
            yield event.picture(camera)


def compute_pedestal(
    source: str | os.PathLike | BinaryIO | MidasFile,
    max_pictures: int = 200,
    progress: Callable[[int], Any] | None = None,
    camera: int = 0,
) -> PedestalMaps:
    """Pedestal maps of a pedestal run's MIDAS file (path, binary file or MidasFile)."""
    if isinstance(source, MidasFile):
        return pedestal_from_frames(
            _pictures(source, camera), max_pictures, source.run_number, progress
        )
    with MidasFile(source) as midas:
        return pedestal_from_frames(
            _pictures(midas, camera), max_pictures, midas.run_number, progress
        )


def choose_pedestal_run(logbook: Any, run: int) -> int | None:
    """The logbook's pedestal run for a data run (rule lives in `DaqLogbook.pedestal_for`)."""
    return logbook.pedestal_for(run)
