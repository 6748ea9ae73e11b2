"""Constants, the store protocol, JSON helpers and configuration shared by the quality modules."""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any, Literal, Protocol

import numpy as np

HIST_SCHEMA = "cygno.hist/1"
FLAGS = ("good", "warning", "bad")

Flag = Literal["good", "warning", "bad"]


# --------------------------------------------------------------------------- output sinks


class Store(Protocol):
    """The part of ``ObjectStore`` this module writes and reads through."""

    def publish(self, key: str) -> contextlib.AbstractContextManager[IO[bytes]]: ...

    def open(self, key: str, mode: str = "rb") -> IO[bytes]: ...

    def exists(self, key: str) -> bool: ...

    def list(self, prefix: str) -> list[str]: ...

    def delete(self, key: str) -> None: ...

    def etag(self, key: str) -> str: ...


def _join(prefix: str, name: str) -> str:
    return f"{prefix.rstrip('/')}/{name}" if prefix else name


def _write_bytes(store: Store, key: str, data: bytes) -> str:
    with store.publish(key) as handle:
        handle.write(data)
    return key


def _forget_pngs(store: Store, prefix: str) -> None:
    """Delete the PNGs directly under ``prefix``: drawn from data just replaced, they are
    stale (the plot server draws them again on request)."""
    folder = _join(prefix, "")
    for key in store.list(folder):
        if key.endswith(".png") and "/" not in key[len(folder) :]:
            store.delete(key)


def _read_json(store: Store, key: str) -> Any:
    with store.open(key, "rb") as handle:
        return json.loads(handle.read())


def _clean(obj: Any) -> Any:
    """JSON has no NaN or infinity: they become ``null``."""
    if isinstance(obj, float | np.floating):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {key: _clean(value) for key, value in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(value) for value in obj]
    return obj


def _dumps(obj: Any) -> bytes:
    return json.dumps(_clean(obj), indent=1, allow_nan=False, default=_json_default).encode()


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class QualityConfig:
    """Binning and selections. The cluster and picture histograms span each run's data
    (their ranges here are used for a run without any); the others are fixed."""

    integral_range: tuple[float, float] = (1e2, 1e7)
    integral_bins: int = 100
    length_range: tuple[float, float] = (1.0, 3000.0)
    length_bins: int = 60
    cmos_range: tuple[float, float] = (1e3, 1e10)
    cmos_bins: int = 70
    pedestal_range: tuple[float, float] = (0.0, 200.0)
    pedestal_bins: int = 200
    noise_range: tuple[float, float] = (0.0, 20.0)
    noise_bins: int = 200
    fe_energy_kev: float = 5.9
    fe_min_roundness: float = 0.5  # width / length of a ⁵⁵Fe spot candidate
    fe_peak_hint: tuple[float, float] | None = None  # integral window holding the peak
    fe_min_clusters: int = 50
    fe_max_shape_error: float = 0.25  # per-bin misfit of the Gaussian beyond Poisson noise
    fe_max_resolution: float = 0.5  # σ/μ; a wider "peak" is not the 5.9 keV line
    fe_max_asymmetry: float = 0.5  # (upper − lower) / sum of the 1–2σ flanks
    spark_factor: float = 10.0  # picture with cmos_integral > factor × run median
    pmt_amplitude_range: tuple[float, float] = (1.0, 1e4)  # PMT peak height, ADC
    pmt_amplitude_bins: int = 60
    pmt_tot_range: tuple[float, float] = (0.0, 2000.0)  # time over threshold, samples
    pmt_tot_bins: int = 100
    pmt_peaks_max: int = 200  # PMT peaks per picture (every waveform of its triggers)


@dataclass(frozen=True)
class Thresholds:
    """When a comparison or a summary number makes a run ``warning`` or ``bad``."""

    method: Literal["chi2", "ks"] = "chi2"
    chi2_warning: float = 3.0  # χ²/ndf of the shape comparison
    chi2_bad: float = 10.0
    ks_warning: float = 0.1  # Kolmogorov distance of the normalised cumulatives
    ks_bad: float = 0.3
    min_entries: int = 20  # below this a histogram is not compared
    light_yield_warning: float = 0.05  # relative shift from the reference
    light_yield_bad: float = 0.15
    noise_warning: float = 0.10  # relative shift of the mean pedestal noise
    noise_bad: float = 0.30
    spark_fraction_warning: float = 0.02
    spark_fraction_bad: float = 0.10
