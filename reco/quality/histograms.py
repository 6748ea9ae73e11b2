"""Reading a reco file's monitoring columns and building its histograms (``cygno.hist/1`` JSON)."""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any

import hist
import numpy as np

from cygno.reco.quality.common import (
    HIST_SCHEMA,
    QualityConfig,
)

# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class PMTArrays:
    """The PMT_Events columns monitoring needs."""

    peak_height: np.ndarray  # per peak, every waveform
    tot_time: np.ndarray  # per waveform
    peaks_per_event: np.ndarray  # per picture with digitizer banks


def _read_pmt(root: Any) -> PMTArrays | None:
    import awkward as ak

    if "PMT_Events" not in root:
        return None
    names = ["pmt_wf_event", "pmt_wf_nPeaks", "pmt_TOT_time", "pmt_peak_Height"]
    arrays = root["PMT_Events"].arrays(names, library="ak")
    _, picture = np.unique(ak.to_numpy(arrays["pmt_wf_event"]), return_inverse=True)
    peaks = ak.to_numpy(arrays["pmt_wf_nPeaks"]).astype(np.int64)
    per_event = np.bincount(picture, weights=peaks).astype(np.int64) if len(peaks) else peaks
    return PMTArrays(
        peak_height=ak.to_numpy(ak.flatten(arrays["pmt_peak_Height"])).astype(np.float64),
        tot_time=ak.to_numpy(arrays["pmt_TOT_time"]).astype(np.float64),
        peaks_per_event=per_event,
    )


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
    pmt: PMTArrays | None = None  # runs with digitizer banks

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
        pmt = _read_pmt(root)

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
        pmt=pmt,
    )


# --------------------------------------------------------------------------- histograms


def _log_axis(bins: int, lo_hi: tuple[float, float], name: str, label: str) -> hist.axis.Regular:
    return hist.axis.Regular(
        bins, lo_hi[0], lo_hi[1], transform=hist.axis.transform.log, name=name, label=label
    )


def _data_log_axis(
    values: np.ndarray, bins: int, fallback: tuple[float, float], name: str, label: str
) -> hist.axis.Regular:
    """A log axis spanning this run's positive values (a margin either side), so a narrow
    spectrum is not squeezed into one bin of a fixed 10²–10⁷ range; ``fallback`` when the
    run has none."""
    positive = values[np.isfinite(values) & (values > 0)]
    if len(positive) == 0:
        return _log_axis(bins, fallback, name, label)
    lo, hi = float(positive.min()) / DATA_MARGIN, float(positive.max()) * DATA_MARGIN
    return _log_axis(bins, (lo, hi), name, label)


#: Factor between a data-driven axis' edges and the run's extreme values.
DATA_MARGIN = 1.25


def _axes_like(
    like: Mapping[str, hist.Hist] | None, name: str, *own: hist.axis.AxesMixin
) -> tuple[hist.axis.AxesMixin, ...]:
    """The reference run's axes for histogram ``name`` when there is one (the comparison
    needs the same binning), else the run's own."""
    if like is not None and name in like and like[name].ndim == len(own):
        return tuple(like[name].axes)
    return own


def _new(name: str, title: str, *axes: hist.axis.AxesMixin) -> hist.Hist:
    return hist.Hist(*axes, storage=hist.storage.Double(), name=name, label=title)


def _finite(values: np.ndarray) -> np.ndarray:
    return values[np.isfinite(values)]


def build_histograms(
    data: RecoArrays,
    pedestal: Any | None = None,
    config: QualityConfig = QualityConfig(),
    like: Mapping[str, hist.Hist] | None = None,
) -> dict[str, hist.Hist]:
    """The run's monitoring histograms, keyed by name.

    ``pedestal`` is anything with ``.mean`` and ``.sigma`` per-pixel maps
    (``cygno.reco.pedestal.PedestalMaps``) or their :class:`PedestalMonitor`; without it
    the pedestal plots are skipped.
    The cluster and picture histograms span this run's data; with ``like`` (a reference
    run's histograms) they take its binning instead, so the two can be compared.
    """
    c = config
    label = "cluster integral [ADC]"
    spectrum = _new(
        "sc_integral",
        "Cluster integral spectrum",
        *_axes_like(
            like,
            "sc_integral",
            _data_log_axis(data.sc_integral, c.integral_bins, c.integral_range, "integral", label),
        ),
    )
    spectrum.fill(_finite(data.sc_integral))

    both = np.isfinite(data.sc_integral) & np.isfinite(data.sc_length)
    length_vs_integral = _new(
        "sc_length_vs_integral",
        "Cluster length vs integral",
        *_axes_like(
            like,
            "sc_length_vs_integral",
            _data_log_axis(
                data.sc_integral[both], c.integral_bins // 2, c.integral_range, "integral", label
            ),
            _data_log_axis(
                data.sc_length[both], c.length_bins, c.length_range, "length", "cluster length [px]"
            ),
        ),
    )
    length_vs_integral.fill(data.sc_integral[both], data.sc_length[both])

    most = int(data.n_clusters.max()) if len(data.n_clusters) else 0
    per_picture = _new(
        "clusters_per_picture",
        "Clusters per picture",
        *_axes_like(
            like,
            "clusters_per_picture",
            hist.axis.Integer(0, most + 2, name="nSc", label="clusters per picture"),
        ),
    )
    per_picture.fill(data.n_clusters)

    cmos = _new(
        "cmos_integral",
        "CMOS integral per picture (spark monitor)",
        *_axes_like(
            like,
            "cmos_integral",
            _data_log_axis(
                data.cmos_integral,
                c.cmos_bins,
                c.cmos_range,
                "cmos_integral",
                "picture integral [ADC]",
            ),
        ),
    )
    cmos.fill(_finite(data.cmos_integral))

    histograms = {h.name: h for h in (spectrum, length_vs_integral, per_picture, cmos)}
    if data.pmt is not None:
        histograms.update({h.name: h for h in _pmt_histograms(data.pmt, c)})
    if pedestal is not None:
        histograms.update(pedestal_monitor(pedestal, c).histograms)
    return histograms


@dataclass(frozen=True)
class PedestalMonitor:
    """What monitoring takes from pedestal maps: the per-pixel mean and noise histograms
    and the maps' averages. The same for every run made with those maps, so a caller
    judging several runs makes it once (:func:`pedestal_monitor`, same configuration)
    and passes it wherever the maps would go."""

    histograms: dict[str, hist.Hist]
    pedestal_mean: float
    noise_mean: float

    def to_json(self) -> dict[str, Any]:
        """JSON-ready: the histograms as ``cygno.hist/1`` (flow bins included), NaN as null."""

        def number(value: float) -> float | None:
            return value if np.isfinite(value) else None

        return {
            "histograms": {name: histogram_to_json(h) for name, h in self.histograms.items()},
            "pedestal_mean": number(self.pedestal_mean),
            "noise_mean": number(self.noise_mean),
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> PedestalMonitor:
        """Rebuild what :meth:`to_json` wrote; the histograms keep their flow bins, so
        they serialise again exactly as the ones made from the maps."""
        histograms = {}
        for name, data in doc["histograms"].items():
            h = histogram_from_json(data)
            flow = h.view(flow=True)
            flow[0], flow[-1] = data["underflow"], data["overflow"]
            histograms[name] = h

        def number(value: float | None) -> float:
            return np.nan if value is None else float(value)

        return cls(histograms, number(doc["pedestal_mean"]), number(doc["noise_mean"]))


def pedestal_monitor(pedestal: Any, config: QualityConfig = QualityConfig()) -> PedestalMonitor:
    """The :class:`PedestalMonitor` of maps with ``.mean`` and ``.sigma`` (returned as is
    when already one): filling a LIME map's 5.3 M pixels costs more than the rest of a
    short run's monitoring."""
    if isinstance(pedestal, PedestalMonitor):
        return pedestal
    c = config
    mean = _new(
        "pedestal_mean",
        "Pedestal mean per pixel",
        hist.axis.Regular(c.pedestal_bins, *c.pedestal_range, name="mean", label="pedestal [ADC]"),
    )
    # float32 maps as they are: the fill converts exactly, an upfront float64 copy of
    # a LIME map cost more than the fill itself
    mean.fill(_finite(np.ravel(pedestal.mean)))
    noise = _new(
        "pedestal_noise",
        "Pedestal noise per pixel",
        hist.axis.Regular(c.noise_bins, *c.noise_range, name="sigma", label="noise [ADC]"),
    )
    noise.fill(_finite(np.ravel(pedestal.sigma)))
    return PedestalMonitor(
        {mean.name: mean, noise.name: noise},
        float(np.nanmean(pedestal.mean)),
        float(np.nanmean(pedestal.sigma)),
    )


def _pmt_histograms(pmt: PMTArrays, c: QualityConfig) -> list[hist.Hist]:
    """Peak amplitude, time over threshold and peaks per picture of the PMT waveforms."""
    amplitude = _new(
        "pmt_peak_amplitude",
        "PMT peak amplitude",
        _log_axis(c.pmt_amplitude_bins, c.pmt_amplitude_range, "amplitude", "peak height [ADC]"),
    )
    amplitude.fill(_finite(pmt.peak_height))
    tot = _new(
        "pmt_tot_time",
        "PMT time over threshold",
        hist.axis.Regular(c.pmt_tot_bins, *c.pmt_tot_range, name="tot", label="TOT [samples]"),
    )
    tot.fill(_finite(pmt.tot_time))
    peaks = _new(
        "pmt_peaks_per_event",
        "PMT peaks per picture",
        hist.axis.Integer(0, c.pmt_peaks_max, name="peaks", label="PMT peaks per picture"),
    )
    peaks.fill(pmt.peaks_per_event)
    return [amplitude, tot, peaks]


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
