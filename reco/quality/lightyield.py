"""The ⁵⁵Fe light-yield fit and the run summary built around it."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import hist
import numpy as np
from scipy import optimize, signal

from cygno.reco.quality.common import (
    QualityConfig,
)
from cygno.reco.quality.histograms import (
    RecoArrays,
    _finite,
    _new,
    pedestal_monitor,
)

# --------------------------------------------------------------------------- ⁵⁵Fe light yield


@dataclass(frozen=True)
class LightYield:
    """Gaussian fit of the ⁵⁵Fe spot peak in the cluster integral spectrum."""

    peak: float  # fitted mean integral [ADC]
    peak_err: float
    sigma: float
    sigma_err: float
    energy_kev: float
    per_kev: float  # light yield [ADC/keV] = peak / energy
    per_kev_err: float
    chi2_ndf: float
    n_peak: int  # clusters inside the fit range
    fit_range: tuple[float, float]
    histogram: hist.Hist = field(repr=False, compare=False)  # counts in the fit range
    params: tuple[float, ...] = field(repr=False)  # amplitude, mean, sigma, constant
    problem: str | None = None  # why this is not a credible ⁵⁵Fe line (None: it is)

    @property
    def resolution(self) -> float:
        return self.sigma / self.peak

    def curve(self, x: np.ndarray) -> np.ndarray:
        """Counts per bin of :attr:`histogram` that the fit predicts at ``x``."""
        return _gauss_const(x, *self.params)


def _gauss_const(x: np.ndarray, amp: float, mu: float, sigma: float, const: float) -> np.ndarray:
    return amp * np.exp(-0.5 * ((x - mu) / sigma) ** 2) + const


def _coarse_mode(values: np.ndarray) -> float:
    """The most prominent peak of the spectrum in log space (edges cannot win)."""
    logs = np.log10(values)
    lo, hi = np.percentile(logs, [0.5, 99.5])
    if hi <= lo:
        return float(10**lo)
    counts, edges = np.histogram(logs, bins=50, range=(lo, hi))
    smooth = np.convolve(counts, [0.25, 0.5, 0.25], mode="same")
    peaks, props = signal.find_peaks(smooth, prominence=max(smooth.max() * 0.05, 1.0))
    best = peaks[np.argmax(props["prominences"])] if len(peaks) else int(np.argmax(smooth))
    return float(10 ** (0.5 * (edges[best] + edges[best + 1])))


def _dip_significance(values: np.ndarray, mu: float, sigma: float, side: int) -> float:
    """How many standard deviations the count density within μ ± σ exceeds the one in
    the band 2–3σ away on ``side`` (−1 below, +1 above)."""
    centre = np.count_nonzero(np.abs(values - mu) < sigma)  # width 2σ
    offset = side * (values - mu)
    band = np.count_nonzero((offset >= 2 * sigma) & (offset < 3 * sigma))  # width σ
    return float((centre - 2 * band) / math.sqrt(max(centre + 4 * band, 1)))


def fit_light_yield(
    integrals: np.ndarray,
    energy_kev: float = 5.9,
    peak_hint: tuple[float, float] | None = None,
    min_clusters: int = 50,
    max_shape_error: float = 0.25,
    max_resolution: float = 0.5,
    max_asymmetry: float = 0.5,
) -> LightYield | None:
    """Fit the ⁵⁵Fe peak among spot-like cluster integrals; ``None`` when nothing to fit.

    The peak is located as the most prominent maximum of the log-binned spectrum, then a
    Gaussian plus constant is fitted to the counts in μ ± 2σ, three times, each range from
    the previous fit (Poisson errors, ``absolute_sigma``), so the tails and the noise
    clusters below do not pull the mean. A fit that converged but does not look like a
    line comes back with :attr:`LightYield.problem` set. A line must (1) be a local
    maximum: the density within μ ± σ exceeds that 2–3σ away on both sides by 2 standard
    deviations; (2) have flanks at 1–2σ of similar size (|asymmetry| ≤ ``max_asymmetry``);
    (3) be Gaussian: the misfit per bin beyond Poisson noise, √(excess of χ²/ndf over
    1 + 2√(2/ndf), per entry per bin), at most ``max_shape_error`` — unlike χ²/ndf this
    does not grow with statistics, so big runs with slightly skewed lines pass while a
    noise spectrum cut by a threshold fails; (4) σ/μ ≤ ``max_resolution``; (5) at least
    ``min_clusters`` clusters in the Gaussian.
    """
    values = integrals[np.isfinite(integrals) & (integrals > 0)]
    if peak_hint is not None:
        values = values[(values >= peak_hint[0]) & (values <= peak_hint[1])]
    if len(values) < min_clusters:
        return None
    mode = _coarse_mode(values)
    window = values[(values > 0.6 * mode) & (values < 1.4 * mode)]
    if len(window) < min_clusters:
        return None
    mu = float(np.median(window))
    sigma = float(1.4826 * np.median(np.abs(window - mu))) or 0.1 * mu
    result = None
    for _ in range(3):
        lo, hi = mu - 2 * sigma, mu + 2 * sigma
        inside = values[(values >= lo) & (values <= hi)]
        if len(inside) < min_clusters:
            return None
        bins = int(np.clip(len(inside) / 25, 20, 80))
        counts, edges = np.histogram(inside, bins=bins, range=(lo, hi))
        centres = 0.5 * (edges[1:] + edges[:-1])
        errors = np.sqrt(np.maximum(counts, 1.0))
        p0 = (float(counts.max()), mu, sigma, 0.0)
        bounds = ([0.0, lo, 1e-6 * mu, 0.0], [np.inf, hi, hi - lo, np.inf])
        try:
            params, cov = optimize.curve_fit(
                _gauss_const,
                centres,
                counts,
                p0=p0,
                sigma=errors,
                absolute_sigma=True,
                bounds=bounds,
            )
        except (RuntimeError, ValueError):
            return None
        mu, sigma = float(params[1]), abs(float(params[2]))
        result = (params, cov, counts, edges, centres, errors, inside)
    assert result is not None
    params, cov, counts, edges, centres, errors, inside = result
    errs = np.sqrt(np.diag(cov))
    if not (np.all(np.isfinite(errs)) and edges[0] < mu < edges[-1]):
        return None
    residual = (counts - _gauss_const(centres, *params)) / errors
    ndf = max(len(counts) - len(params), 1)
    chi2 = float(np.sum(residual**2) / ndf)
    signal_count = params[0] * sigma * math.sqrt(2 * math.pi) / (edges[1] - edges[0])
    dip = min(_dip_significance(values, mu, sigma, side) for side in (-1, 1))
    lower = np.count_nonzero((values > mu - 2 * sigma) & (values <= mu - sigma))
    upper = np.count_nonzero((values >= mu + sigma) & (values < mu + 2 * sigma))
    asymmetry = (upper - lower) / max(upper + lower, 1)
    excess = chi2 - 1 - 2 * math.sqrt(2 / ndf)  # beyond a 2σ fluctuation of χ²/ndf
    shape_error = math.sqrt(max(excess, 0) / max(counts.mean(), 1))
    problem = None
    if dip < 2:
        problem = f"no local maximum (edges {dip:.1f} σ below the centre)"
    elif abs(asymmetry) > max_asymmetry:
        problem = f"one-sided peak (flank asymmetry {asymmetry:+.2f})"
    elif sigma / mu > max_resolution:
        problem = f"σ/μ {sigma / mu:.0%} > {max_resolution:.0%}"
    elif signal_count < min_clusters:
        problem = f"only {signal_count:.0f} clusters in the peak"
    elif shape_error > max_shape_error:
        problem = f"not Gaussian (χ²/ndf {chi2:.1f}, {shape_error:.0%} misfit per bin)"
    fine = _new(
        "fe55_peak",
        "⁵⁵Fe spot peak",
        hist.axis.Regular(
            len(counts), edges[0], edges[-1], name="integral", label="cluster integral [ADC]"
        ),
    )
    fine.fill(inside)
    return LightYield(
        peak=mu,
        peak_err=float(errs[1]),
        sigma=sigma,
        sigma_err=float(errs[2]),
        energy_kev=energy_kev,
        per_kev=mu / energy_kev,
        per_kev_err=float(errs[1]) / energy_kev,
        chi2_ndf=chi2,
        n_peak=len(inside),
        fit_range=(float(edges[0]), float(edges[-1])),
        histogram=fine,
        params=tuple(float(p) for p in params),
        problem=problem,
    )


def fe55_from_logbook(row: Mapping[str, Any] | None) -> bool | None:
    """``fe55`` for :func:`run_quality` from a DAQ logbook row's ``source_type``:
    True for a ⁵⁵Fe source, False for another known one, None when the row says nothing."""
    source = (row or {}).get("source_type")
    if not isinstance(source, str) or not source.strip():
        return None
    return source.replace(" ", "").replace("-", "").lower() in ("fe55", "55fe", "iron55")


def spot_integrals(data: RecoArrays, config: QualityConfig = QualityConfig()) -> np.ndarray:
    """Integrals of ⁵⁵Fe spot candidates: not track-like and round (width/length)."""
    keep = np.ones(len(data.sc_integral), dtype=bool)
    if data.sc_tracklike is not None:
        keep &= data.sc_tracklike == 0
    with np.errstate(invalid="ignore", divide="ignore"):
        roundness = data.sc_width / data.sc_length
    keep &= ~(roundness < config.fe_min_roundness)  # unknown shape (NaN) is kept
    return data.sc_integral[keep]


# --------------------------------------------------------------------------- summary


def summarize(
    data: RecoArrays,
    pedestal: Any | None = None,
    light_yield: LightYield | None = None,
    config: QualityConfig = QualityConfig(),
) -> dict[str, Any]:
    """The run's headline numbers (JSON-ready; ``None`` where not measurable)."""

    def number(value: float) -> float | None:
        return float(value) if value is not None and np.isfinite(value) else None

    cmos = _finite(data.cmos_integral)
    median = float(np.median(cmos)) if len(cmos) else math.nan
    sparks = int(np.sum(cmos > config.spark_factor * median)) if len(cmos) else 0
    clusters = int(data.n_clusters.sum())
    summary: dict[str, Any] = {
        "run": data.run,
        "pictures": data.pictures,
        "clusters": clusters,
        "clusters_per_picture": number(clusters / data.pictures) if data.pictures else None,
        "tracklike_fraction": (
            number(float(np.mean(data.sc_tracklike > 0)))
            if data.sc_tracklike is not None and len(data.sc_tracklike)
            else None
        ),
        "cmos_integral_mean": number(float(np.mean(cmos))) if len(cmos) else None,
        "cmos_integral_median": number(median),
        "sparks": sparks,
        "spark_fraction": number(sparks / len(cmos)) if len(cmos) else None,
        "pedestal_mean": None,
        "noise_mean": None,
        "fe_peak": None,
        "fe_peak_err": None,
        "fe_resolution": None,
        "light_yield": None,
        "light_yield_err": None,
        "light_yield_chi2_ndf": None,
    }
    if pedestal is not None:
        monitor = pedestal_monitor(pedestal, config)
        summary["pedestal_mean"] = number(monitor.pedestal_mean)
        summary["noise_mean"] = number(monitor.noise_mean)
    if light_yield is not None:
        summary.update(
            fe_peak=light_yield.peak,
            fe_peak_err=light_yield.peak_err,
            fe_resolution=light_yield.resolution,
            light_yield=light_yield.per_kev,
            light_yield_err=light_yield.per_kev_err,
            light_yield_chi2_ndf=light_yield.chi2_ndf,
        )
    return summary
