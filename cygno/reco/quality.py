"""Data-quality monitoring of one reconstructed run, and trends across runs.

From a reco ROOT file (tree ``Events``, branches of RECONSTRUCTION.md) and optionally
the pedestal maps it was made with, this module builds the run's monitoring histograms
(``hist``), fits the ⁵⁵Fe light yield, compares every histogram with a reference run of
the same kind (χ²/ndf and Kolmogorov distance, reference overlaid on the plot), gives
the run a flag ``good`` / ``warning`` / ``bad`` with its reasons, and draws trend plots
(light yield, clusters per picture, noise vs run number) from a list of run summaries.

A plain library: no Prefect. Functions take and return arrays, ``hist.Hist`` objects,
dicts and PNG bytes; :func:`run_quality` and :func:`write_trends` write through any
object with the ``ObjectStore`` methods ``publish(key)`` (a context manager giving a
writable binary file), ``open(key, mode)``, ``exists(key)`` and ``list(prefix)`` —
``cygno.storage.objectstore.ObjectStore`` (``file://`` for plain folders).

Histogram JSON schema ``cygno.hist/1`` (one object per file, ``<name>.json``)::

    {"schema": "cygno.hist/1",
     "name": "sc_integral", "title": "Cluster integral spectrum",
     "axes": [{"name": "integral", "label": "cluster integral [ADC]",
               "edges": [e0, …, eN], "log": true}, …],   # 1 or 2 axes
     "counts": [c0, …, cN-1],       # nested [x][y] for 2D; flow bins excluded
     "underflow": u, "overflow": o, # 1D only: entries outside the edges
     "entries": n}                  # all fills, flow included

Counts are unweighted fills, so their Poisson variances equal the counts.
"""

from __future__ import annotations

import contextlib
import html
import io
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import IO, Any, Literal, Protocol

import hist
import numpy as np
from scipy import optimize, signal, stats

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


def _join(prefix: str, name: str) -> str:
    return f"{prefix.rstrip('/')}/{name}" if prefix else name


def _write_bytes(store: Store, key: str, data: bytes) -> str:
    with store.publish(key) as handle:
        handle.write(data)
    return key


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
    """Binning and selections. Ranges are wide enough for LIME; change them per detector."""

    integral_range: tuple[float, float] = (1e2, 1e7)
    integral_bins: int = 100
    length_range: tuple[float, float] = (1.0, 3000.0)
    length_bins: int = 60
    clusters_max: int = 100
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


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class RecoArrays:
    """The columns of a reco file that monitoring needs, flattened to numpy."""

    run: int | None
    event: np.ndarray  # per picture
    n_clusters: np.ndarray  # per picture
    cmos_integral: np.ndarray  # per picture
    sc_integral: np.ndarray  # per cluster
    sc_length: np.ndarray
    sc_width: np.ndarray
    sc_tracklike: np.ndarray | None

    @property
    def pictures(self) -> int:
        return len(self.n_clusters)


def read_reco(source: str | os.PathLike[str] | bytes | IO[bytes]) -> RecoArrays:
    """Read the monitoring columns of a reco ROOT file (path, bytes or open binary file)."""
    import awkward as ak
    import uproot

    if isinstance(source, bytes | bytearray):
        source = io.BytesIO(source)
    with uproot.open(source) as root:
        tree = root["Events"]
        available = set(tree.keys())
        wanted = [
            "run",
            "event",
            "nSc",
            "cmos_integral",
            "sc_integral",
            "sc_length",
            "sc_width",
            "sc_tracklike",
        ]
        missing = {"nSc", "sc_integral"} - available
        if missing:
            raise ValueError(f"reco file lacks branches {sorted(missing)}")
        arrays = tree.arrays([name for name in wanted if name in available], library="ak")

    def per_picture(name: str, default: float) -> np.ndarray:
        if name in arrays.fields:
            return ak.to_numpy(arrays[name]).astype(np.float64)
        return np.full(len(arrays), default)

    def per_cluster(name: str) -> np.ndarray | None:
        if name not in arrays.fields:
            return None
        return ak.to_numpy(ak.flatten(arrays[name], axis=None)).astype(np.float64)

    n_clusters = ak.to_numpy(arrays["nSc"]).astype(np.int64)
    integral = per_cluster("sc_integral")
    assert integral is not None
    nan = np.full(len(integral), np.nan)
    length = per_cluster("sc_length")
    width = per_cluster("sc_width")
    runs = per_picture("run", np.nan)
    run = int(runs[0]) if len(runs) and np.isfinite(runs[0]) else None
    return RecoArrays(
        run=run,
        event=per_picture("event", np.nan),
        n_clusters=n_clusters,
        cmos_integral=per_picture("cmos_integral", np.nan),
        sc_integral=integral,
        sc_length=nan if length is None else length,
        sc_width=nan if width is None else width,
        sc_tracklike=per_cluster("sc_tracklike"),
    )


# --------------------------------------------------------------------------- histograms


def _log_axis(bins: int, lo_hi: tuple[float, float], name: str, label: str) -> hist.axis.Regular:
    return hist.axis.Regular(
        bins, lo_hi[0], lo_hi[1], transform=hist.axis.transform.log, name=name, label=label
    )


def _new(name: str, title: str, *axes: hist.axis.AxesMixin) -> hist.Hist:
    return hist.Hist(*axes, storage=hist.storage.Double(), name=name, label=title)


def _finite(values: np.ndarray) -> np.ndarray:
    return values[np.isfinite(values)]


def build_histograms(
    data: RecoArrays, pedestal: Any | None = None, config: QualityConfig = QualityConfig()
) -> dict[str, hist.Hist]:
    """The run's monitoring histograms, keyed by name.

    ``pedestal`` is anything with ``.mean`` and ``.sigma`` per-pixel maps
    (``cygno.reco.pedestal.PedestalMaps``); without it the pedestal plots are skipped.
    """
    c = config
    integral = _log_axis(c.integral_bins, c.integral_range, "integral", "cluster integral [ADC]")
    spectrum = _new("sc_integral", "Cluster integral spectrum", integral)
    spectrum.fill(_finite(data.sc_integral))

    both = np.isfinite(data.sc_integral) & np.isfinite(data.sc_length)
    length_vs_integral = _new(
        "sc_length_vs_integral",
        "Cluster length vs integral",
        _log_axis(c.integral_bins // 2, c.integral_range, "integral", "cluster integral [ADC]"),
        _log_axis(c.length_bins, c.length_range, "length", "cluster length [px]"),
    )
    length_vs_integral.fill(data.sc_integral[both], data.sc_length[both])

    per_picture = _new(
        "clusters_per_picture",
        "Clusters per picture",
        hist.axis.Integer(0, c.clusters_max, name="nSc", label="clusters per picture"),
    )
    per_picture.fill(data.n_clusters)

    cmos = _new(
        "cmos_integral",
        "CMOS integral per picture (spark monitor)",
        _log_axis(c.cmos_bins, c.cmos_range, "cmos_integral", "picture integral [ADC]"),
    )
    cmos.fill(_finite(data.cmos_integral))

    histograms = {h.name: h for h in (spectrum, length_vs_integral, per_picture, cmos)}
    if pedestal is not None:
        mean = _new(
            "pedestal_mean",
            "Pedestal mean per pixel",
            hist.axis.Regular(
                c.pedestal_bins, *c.pedestal_range, name="mean", label="pedestal [ADC]"
            ),
        )
        mean.fill(_finite(np.asarray(pedestal.mean, dtype=np.float64).ravel()))
        noise = _new(
            "pedestal_noise",
            "Pedestal noise per pixel",
            hist.axis.Regular(c.noise_bins, *c.noise_range, name="sigma", label="noise [ADC]"),
        )
        noise.fill(_finite(np.asarray(pedestal.sigma, dtype=np.float64).ravel()))
        histograms.update({mean.name: mean, noise.name: noise})
    return histograms


def histogram_to_json(h: hist.Hist) -> dict[str, Any]:
    """Serialise a 1D or 2D histogram to the ``cygno.hist/1`` schema (see module doc)."""
    axes = [
        {
            "name": axis.name,
            "label": axis.label,
            "edges": [float(e) for e in axis.edges],
            "log": _is_log(axis),
        }
        for axis in h.axes
    ]
    out: dict[str, Any] = {
        "schema": HIST_SCHEMA,
        "name": h.name,
        "title": h.label,
        "axes": axes,
        "counts": h.values(flow=False).tolist(),
        "entries": float(h.values(flow=True).sum()),
    }
    if h.ndim == 1:
        flow = h.values(flow=True)
        has_under = len(flow) > h.axes[0].size and h.axes[0].traits.underflow
        out["underflow"] = float(flow[0]) if has_under else 0.0
        out["overflow"] = float(flow[-1]) if h.axes[0].traits.overflow else 0.0
    return out


def histogram_from_json(data: Mapping[str, Any]) -> hist.Hist:
    """Rebuild a histogram written by :func:`histogram_to_json` (exact edges, no flow)."""
    if data.get("schema") != HIST_SCHEMA:
        raise ValueError(f"not a {HIST_SCHEMA} histogram: schema={data.get('schema')!r}")
    axes = [
        hist.axis.Variable(
            axis["edges"], name=axis["name"], label=axis["label"], metadata={"log": axis["log"]}
        )
        for axis in data["axes"]
    ]
    h = _new(data["name"], data["title"], *axes)
    h.view(flow=False)[...] = np.asarray(data["counts"], dtype=np.float64)
    return h


def _is_log(axis: hist.axis.AxesMixin) -> bool:
    if isinstance(axis.metadata, dict) and "log" in axis.metadata:
        return bool(axis.metadata["log"])
    transform = getattr(axis, "transform", None)
    return transform is not None and "log" in repr(transform)


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
        summary["pedestal_mean"] = number(float(np.nanmean(pedestal.mean)))
        summary["noise_mean"] = number(float(np.nanmean(pedestal.sigma)))
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


# --------------------------------------------------------------------------- comparison


@dataclass(frozen=True)
class Comparison:
    """One histogram compared with the reference run's (shapes, normalised to area)."""

    name: str
    chi2_ndf: float | None
    ndf: int
    ks_distance: float | None
    ks_pvalue: float | None
    flag: Flag
    reason: str


def chi2_ndf(counts: np.ndarray, reference: np.ndarray) -> tuple[float, int]:
    """χ²/ndf of two unweighted histograms with different totals (ROOT's Chi2Test "UU")."""
    a, b = np.ravel(counts).astype(float), np.ravel(reference).astype(float)
    na, nb = a.sum(), b.sum()
    used = (a + b) > 0
    ndf = int(used.sum()) - 1
    if ndf < 1 or na == 0 or nb == 0:
        return math.nan, max(ndf, 0)
    chi2 = np.sum((nb * a[used] - na * b[used]) ** 2 / (a[used] + b[used])) / (na * nb)
    return float(chi2 / ndf), ndf


def ks_distance(counts: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """Kolmogorov distance of two 1D binned distributions and its asymptotic p-value."""
    a, b = np.asarray(counts, float), np.asarray(reference, float)
    na, nb = a.sum(), b.sum()
    if na == 0 or nb == 0:
        return math.nan, math.nan
    distance = float(np.max(np.abs(np.cumsum(a) / na - np.cumsum(b) / nb)))
    n_eff = na * nb / (na + nb)
    return distance, float(stats.kstwobign.sf(distance * math.sqrt(n_eff)))


def _grade(value: float | None, warning: float, bad: float) -> Flag:
    if value is None or not np.isfinite(value):
        return "good"
    return "bad" if value > bad else "warning" if value > warning else "good"


def compare_histograms(
    h: hist.Hist, reference: hist.Hist, thresholds: Thresholds = Thresholds()
) -> Comparison | None:
    """Compare shapes; ``None`` when binnings differ (nothing meaningful to say)."""
    if h.ndim != reference.ndim or any(
        len(a.edges) != len(b.edges) or not np.allclose(a.edges, b.edges)
        for a, b in zip(h.axes, reference.axes, strict=True)
    ):
        return None
    counts, ref = h.values(flow=False), reference.values(flow=False)
    if min(counts.sum(), ref.sum()) < thresholds.min_entries:
        return Comparison(
            h.name,
            None,
            0,
            None,
            None,
            "good",
            f"{h.name}: too few entries to compare ({counts.sum():.0f} vs {ref.sum():.0f})",
        )
    chi2, ndf = chi2_ndf(counts, ref)
    ks, pvalue = ks_distance(counts, ref) if h.ndim == 1 else (None, None)
    if thresholds.method == "ks" and ks is not None:
        flag = _grade(ks, thresholds.ks_warning, thresholds.ks_bad)
        measure = f"Kolmogorov distance {ks:.3f}"
        limit = thresholds.ks_bad if flag == "bad" else thresholds.ks_warning
    else:
        flag = _grade(chi2, thresholds.chi2_warning, thresholds.chi2_bad)
        measure = f"χ²/ndf {chi2:.2f} (ndf {ndf})"
        limit = thresholds.chi2_bad if flag == "bad" else thresholds.chi2_warning
    if flag == "good":
        reason = f"{h.name}: compatible with reference, {measure}"
    else:
        reason = f"{h.name}: differs from reference, {measure} > {limit:g}"
    return Comparison(
        h.name,
        chi2 if np.isfinite(chi2) else None,
        ndf,
        ks if ks is not None and np.isfinite(ks) else None,
        pvalue if pvalue is not None and np.isfinite(pvalue) else None,
        flag,
        reason,
    )


def _relative_check(
    name: str, value: float | None, ref: float | None, warning: float, bad: float
) -> tuple[Flag, str] | None:
    if value is None or ref is None or ref == 0:
        return None
    shift = (value - ref) / abs(ref)
    flag = _grade(abs(shift), warning, bad)
    return flag, f"{name} {value:.4g} vs reference {ref:.4g} ({shift:+.1%})"


def _worst(flags: Iterable[Flag]) -> Flag:
    return max(flags, key=FLAGS.index, default="good")


def flag_run(
    summary: Mapping[str, Any],
    comparisons: Sequence[Comparison],
    reference_summary: Mapping[str, Any] | None = None,
    thresholds: Thresholds = Thresholds(),
    notes: Sequence[tuple[Flag, str]] = (),
) -> tuple[Flag, list[str]]:
    """The run's flag and every reason that is not ``good`` (or why it is good).

    ``notes`` are further (flag, reason) findings of the caller.
    """
    checks: list[tuple[Flag, str]] = list(notes)
    if not summary.get("pictures"):
        checks.append(("bad", "no pictures in the reco file"))
    fraction = summary.get("spark_fraction")
    if fraction is not None:
        flag = _grade(fraction, thresholds.spark_fraction_warning, thresholds.spark_fraction_bad)
        checks.append((flag, f"spark fraction {fraction:.1%}"))
    checks.extend((c.flag, c.reason) for c in comparisons)
    if reference_summary is not None:
        for name, warning, bad in (
            ("light_yield", thresholds.light_yield_warning, thresholds.light_yield_bad),
            ("noise_mean", thresholds.noise_warning, thresholds.noise_bad),
        ):
            check = _relative_check(
                name, summary.get(name), reference_summary.get(name), warning, bad
            )
            if check is not None:
                checks.append(check)
        if reference_summary.get("light_yield") is not None and summary.get("light_yield") is None:
            checks.append(("warning", "reference has a ⁵⁵Fe light yield, this run has none"))
    flag = _worst(flag for flag, _ in checks)
    reasons = [reason for f, reason in checks if f != "good"]
    if not reasons:
        reasons = (
            [f"all checks passed against reference run {reference_summary.get('run')}"]
            if reference_summary is not None
            else ["all checks passed (no reference run)"]
        )
    return flag, reasons


# --------------------------------------------------------------------------- plots


_FLAG_COLOURS = {"good": "tab:green", "warning": "tab:orange", "bad": "tab:red", None: "tab:gray"}


def _figure(size: tuple[float, float] = (7.0, 5.0)):
    from matplotlib.figure import Figure

    fig = Figure(figsize=size)  # fixed margins: constrained layout costs ~1 s per plot
    fig.subplots_adjust(left=0.12, right=0.95, bottom=0.13, top=0.88)
    return fig


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    return buffer.getvalue()


def plot_histogram(
    h: hist.Hist,
    reference: hist.Hist | None = None,
    comparison: Comparison | None = None,
    label: str = "this run",
    reference_label: str = "reference",
    light_yield: LightYield | None = None,
) -> bytes:
    """PNG of one histogram, the reference (scaled to the same area) overlaid."""
    import mplhep

    fig = _figure()
    ax = fig.add_subplot()
    counts = h.values(flow=False)
    if h.ndim == 1:
        edges = h.axes[0].edges
        mplhep.histplot(counts, edges, ax=ax, label=label, yerr=np.sqrt(counts), color="k")
        if reference is not None and reference.values().sum() > 0:
            ref = reference.values(flow=False)
            scaled = ref * counts.sum() / ref.sum()
            mplhep.histplot(
                scaled,
                reference.axes[0].edges,
                ax=ax,
                label=reference_label,
                color="tab:blue",
                linestyle="--",
            )
        if light_yield is not None:
            x = np.linspace(edges[0], edges[-1], 300)
            ax.plot(
                x,
                light_yield.curve(x),
                color="tab:red",
                label=(
                    f"fit: μ = {light_yield.peak:.0f} ± {light_yield.peak_err:.0f}, "
                    f"σ/μ = {light_yield.resolution:.1%}"
                ),
            )
        ax.set_xlabel(h.axes[0].label)
        ax.set_ylabel("entries")
        if _is_log(h.axes[0]):
            ax.set_xscale("log")
        positive = counts[counts > 0]
        if len(positive) and positive.max() > 100 * positive.min():
            ax.set_yscale("log")
        ax.legend(loc="best", fontsize="small")
    else:
        from matplotlib.colors import LogNorm

        xedges, yedges = h.axes[0].edges, h.axes[1].edges
        masked = np.ma.masked_where(counts <= 0, counts)
        mesh = ax.pcolormesh(
            xedges,
            yedges,
            masked.T,
            norm=LogNorm() if masked.count() else None,
            cmap="viridis",
        )
        fig.colorbar(mesh, ax=ax, label="entries")
        if reference is not None and reference.values().sum() > 0:
            ref = reference.values(flow=False)
            xc = 0.5 * (xedges[1:] + xedges[:-1])
            yc = 0.5 * (yedges[1:] + yedges[:-1])
            levels = np.unique(np.percentile(ref[ref > 0], [50, 90])) if (ref > 0).any() else []
            if len(levels):
                ax.contour(xc, yc, ref.T, levels=levels, colors="tab:red", linewidths=1)
                ax.plot([], [], color="tab:red", label=f"{reference_label} (contours)")
                ax.legend(loc="upper left", fontsize="small")
        ax.set_xlabel(h.axes[0].label)
        ax.set_ylabel(h.axes[1].label)
        if _is_log(h.axes[0]):
            ax.set_xscale("log")
        if _is_log(h.axes[1]):
            ax.set_yscale("log")
    title = h.label or h.name
    if comparison is not None and comparison.chi2_ndf is not None:
        extra = f"χ²/ndf = {comparison.chi2_ndf:.2f}"
        if comparison.ks_distance is not None:
            extra += f", KS = {comparison.ks_distance:.3f}"
        title = f"{title}\n{extra} [{comparison.flag}]"
    ax.set_title(title, fontsize="medium")
    return _png(fig)


def plot_cmos_trace(data: RecoArrays, config: QualityConfig = QualityConfig()) -> bytes:
    """Picture integral vs event number, sparks (> factor × median) marked in red."""
    fig = _figure((8.0, 4.0))
    ax = fig.add_subplot()
    x = data.event if np.isfinite(data.event).all() else np.arange(data.pictures)
    y = data.cmos_integral
    ax.plot(x, y, ".", color="k", markersize=3, label="picture")
    finite = _finite(y)
    if len(finite):
        limit = config.spark_factor * float(np.median(finite))
        spark = y > limit
        ax.plot(x[spark], y[spark], "o", color="tab:red", label=f"spark (> {limit:.3g})")
        ax.axhline(limit, color="tab:red", linestyle=":")
        if finite.min() > 0:
            ax.set_yscale("log")
    ax.set_xlabel("event")
    ax.set_ylabel("picture integral [ADC]")
    ax.set_title("CMOS integral per picture (spark monitor)", fontsize="medium")
    ax.legend(loc="best", fontsize="small")
    return _png(fig)


# --------------------------------------------------------------------------- one run


@dataclass(frozen=True)
class Reference:
    """A reference run's histograms and summary, as :func:`run_quality` wrote them."""

    run: int | None
    histograms: dict[str, hist.Hist]
    summary: dict[str, Any]


def load_reference(store: Store, prefix: str) -> Reference:
    """Load the reference run whose quality outputs live under ``prefix``."""
    report = _read_json(store, _join(prefix, "summary.json"))
    histograms = {
        name: histogram_from_json(_read_json(store, _join(prefix, f"{name}.json")))
        for name in report.get("histograms", [])
    }
    return Reference(
        run=report["summary"].get("run"), histograms=histograms, summary=report["summary"]
    )


@dataclass(frozen=True)
class QualityReport:
    """What :func:`run_quality` found and wrote."""

    summary: dict[str, Any]
    flag: Flag
    reasons: list[str]
    comparisons: list[Comparison]
    reference_run: int | None
    histograms: list[str]
    files: dict[str, str]  # plot or data name -> key in the store
    light_yield: LightYield | None = field(default=None, repr=False)

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)

    def to_dict(self) -> dict[str, Any]:
        return {
            "summary": self.summary,
            "flag": self.flag,
            "reasons": self.reasons,
            "reference_run": self.reference_run,
            "comparisons": [asdict(c) for c in self.comparisons],
            "histograms": self.histograms,
            "files": self.files,
        }


def run_quality(
    reco: str | os.PathLike[str] | bytes | IO[bytes] | RecoArrays,
    out: Store,
    prefix: str,
    *,
    pedestal: Any | None = None,
    reference: Reference | None = None,
    fe55: bool | None = None,
    config: QualityConfig = QualityConfig(),
    thresholds: Thresholds = Thresholds(),
    extra: Mapping[str, Any] | None = None,
) -> QualityReport:
    """Histograms, light yield, comparison and flag for one run, written under ``prefix``.

    Writes ``<name>.json`` + ``<name>.png`` per histogram, ``cmos_trace.png`` and
    ``summary.json`` (:meth:`QualityReport.to_dict`). ``fe55``: ``True`` (a ⁵⁵Fe run)
    fits the light yield and makes the run a ``warning`` when no credible line is found,
    ``False`` skips the fit, ``None`` keeps the light yield only when one is found — a
    guess that a noise spectrum cut sharply by a threshold can fool, so pass the run's
    kind when it is known (:func:`fe55_from_logbook`).
    ``extra`` (e.g. tag, reco version) is merged into the summary.
    """
    data = reco if isinstance(reco, RecoArrays) else read_reco(reco)
    histograms = build_histograms(data, pedestal, config)
    fit = None
    if fe55 is not False:
        fit = fit_light_yield(
            spot_integrals(data, config),
            config.fe_energy_kev,
            config.fe_peak_hint,
            config.fe_min_clusters,
            config.fe_max_shape_error,
            config.fe_max_resolution,
            config.fe_max_asymmetry,
        )
    light_yield = fit if fit is not None and fit.problem is None else None
    notes: list[tuple[Flag, str]] = []
    if fit is not None and (light_yield is not None or fe55):
        histograms["fe55_peak"] = fit.histogram  # a rejected fit is shown when expected
    if fe55 and light_yield is None:
        why = fit.problem if fit is not None else "too few spot-like clusters"
        notes.append(("warning", f"no ⁵⁵Fe light yield: {why}"))
    summary = {**summarize(data, pedestal, light_yield, config), **dict(extra or {})}

    comparisons: list[Comparison] = []
    if reference is not None:
        for name, h in histograms.items():
            ref = reference.histograms.get(name)
            if ref is not None and (found := compare_histograms(h, ref, thresholds)):
                comparisons.append(found)
    flag, reasons = flag_run(
        summary, comparisons, reference.summary if reference else None, thresholds, notes
    )
    summary["flag"] = flag
    summary["flag_reason"] = "; ".join(reasons)

    files: dict[str, str] = {}
    by_name = {c.name: c for c in comparisons}
    ref_label = f"reference run {reference.run}" if reference else "reference"
    for name, h in histograms.items():
        files[f"{name}.json"] = _write_bytes(
            out, _join(prefix, f"{name}.json"), _dumps(histogram_to_json(h))
        )
        png = plot_histogram(
            h,
            reference.histograms.get(name) if reference else None,
            by_name.get(name),
            label=f"run {data.run}" if data.run is not None else "this run",
            reference_label=ref_label,
            light_yield=fit if name == "fe55_peak" else None,
        )
        files[f"{name}.png"] = _write_bytes(out, _join(prefix, f"{name}.png"), png)
    files["cmos_trace.png"] = _write_bytes(
        out, _join(prefix, "cmos_trace.png"), plot_cmos_trace(data, config)
    )
    files["summary.json"] = _join(prefix, "summary.json")
    report = QualityReport(
        summary=summary,
        flag=flag,
        reasons=reasons,
        comparisons=comparisons,
        reference_run=reference.run if reference else None,
        histograms=list(histograms),
        files=files,
        light_yield=light_yield,
    )
    _write_bytes(out, files["summary.json"], _dumps(report.to_dict()))
    return report


def report_markdown(report: QualityReport, base_url: str) -> str:
    """Markdown for a Prefect artifact: flag, numbers and the plots as absolute links."""
    base = base_url.rstrip("/")
    s = report.summary
    lines = [
        f"# Quality of run {s.get('run')}: **{report.flag}**",
        "",
        *(f"- {reason}" for reason in report.reasons),
        "",
        "| quantity | value |",
        "|---|---|",
    ]
    for key, value in s.items():
        if key in ("flag", "flag_reason") or value is None:
            continue
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        lines.append(f"| {key} | {shown} |")
    lines.append("")
    for name, key in report.files.items():
        if name.endswith(".png"):
            lines.append(f"![{name}]({base}/files/{key})")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- trends


TREND_PLOTS = {
    "light_yield": ("light_yield", "light_yield_err", "⁵⁵Fe light yield [ADC/keV]"),
    "clusters_per_picture": ("clusters_per_picture", None, "clusters per picture"),
    "noise": ("noise_mean", None, "mean pedestal noise [ADC]"),
}


def trend_prefix(reco_version: str, tag: str) -> str:
    """Where the trend plots of one reco version and site tag live in the store."""
    return f"quality/trends/{reco_version}/{tag}"


def plot_trend(
    summaries: Sequence[Mapping[str, Any]], key: str, err_key: str | None, label: str
) -> bytes:
    """One summary number vs run number, points coloured by the run's flag."""
    fig = _figure((8.0, 4.0))
    ax = fig.add_subplot()
    for flag in (*FLAGS, None):
        rows = [
            s
            for s in summaries
            if s.get(key) is not None and s.get("run") is not None and s.get("flag") == flag
        ]
        if not rows:
            continue
        x = [s["run"] for s in rows]
        y = [s[key] for s in rows]
        yerr = [s.get(err_key) or 0.0 for s in rows] if err_key else None
        ax.errorbar(
            x,
            y,
            yerr=yerr,
            fmt="o",
            color=_FLAG_COLOURS[flag],
            label=flag or "unflagged",
            markersize=4,
        )
    ax.set_xlabel("run")
    ax.set_ylabel(label)
    ax.set_title(f"{label} vs run", fontsize="medium")
    ax.xaxis.get_major_locator().set_params(integer=True)
    if ax.has_data():
        ax.legend(loc="best", fontsize="small")
    else:
        ax.text(0.5, 0.5, "no runs with this number yet", transform=ax.transAxes, ha="center")
    return _png(fig)


def write_trends(summaries: Iterable[Mapping[str, Any]], out: Store, prefix: str) -> dict[str, str]:
    """Redraw the trend plots from run summaries and write them with ``summaries.json``.

    Call after each run with all summaries of one reco version and tag (the catalog's
    quality reports): the output depends only on the list, so rewriting is idempotent
    and concurrent writers converge to the newest complete list.
    """
    rows = sorted((dict(s) for s in summaries if s.get("run") is not None), key=lambda s: s["run"])
    files = {}
    for name, (key, err_key, label) in TREND_PLOTS.items():
        files[f"{name}.png"] = _write_bytes(
            out, _join(prefix, f"{name}.png"), plot_trend(rows, key, err_key, label)
        )
    files["summaries.json"] = _write_bytes(out, _join(prefix, "summaries.json"), _dumps(rows))
    return files


TREND_COLUMNS = (
    ("run", "run"),
    ("flag", "flag"),
    ("pictures", "pictures"),
    ("clusters_per_picture", "clusters / picture"),
    ("cmos_integral_mean", "mean CMOS integral"),
    ("spark_fraction", "spark fraction"),
    ("noise_mean", "noise [ADC]"),
    ("light_yield", "light yield [ADC/keV]"),
    ("light_yield_err", "±"),
    ("flag_reason", "reason"),
)


def trend_table_html(summaries: Sequence[Mapping[str, Any]], files_url: str) -> str:
    """An HTML fragment: trend plots, then one table row per run (escaped)."""

    def cell(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, float):
            return f"{value:.4g}"
        return html.escape(str(value))

    parts = [
        f'<img src="{html.escape(files_url)}/{name}.png" alt="{name} trend" width="640">'
        for name in TREND_PLOTS
    ]
    header = "".join(f"<th>{html.escape(title)}</th>" for _, title in TREND_COLUMNS)
    rows = []
    for s in summaries:
        flag = s.get("flag")
        colour = {"good": "#dfd", "warning": "#ffd9a0", "bad": "#fbb"}.get(flag, "#fff")
        cells = "".join(f"<td>{cell(s.get(key))}</td>" for key, _ in TREND_COLUMNS)
        rows.append(f'<tr style="background:{colour}">{cells}</tr>')
    parts.append(f"<table><tr>{header}</tr>{''.join(rows)}</table>")
    return "\n".join(parts)
