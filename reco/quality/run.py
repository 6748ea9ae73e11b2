"""One run end to end: histograms, fit, comparison, plots and report written to a store.

The PNGs are drawn from what the run's JSON files hold (``<name>.json``, ``plots.json``,
``summary.json``), either at once (``run_quality(plots=True)``) or later on request
(:func:`draw_plot`, which the plot server calls for a PNG not yet in the store): the
flag never waits on matplotlib."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import IO, Any

import hist
import numpy as np

from cygno.reco.quality.common import (
    Flag,
    QualityConfig,
    Store,
    Thresholds,
    _dumps,
    _forget_pngs,
    _join,
    _read_json,
    _write_bytes,
)
from cygno.reco.quality.compare import (
    Comparison,
    compare_histograms,
    flag_run,
)
from cygno.reco.quality.histograms import (
    RecoArrays,
    build_histograms,
    histogram_from_json,
    histogram_to_json,
    pedestal_monitor,
    read_reco,
)
from cygno.reco.quality.lightyield import (
    LightYield,
    fit_light_yield,
    spot_integrals,
    summarize,
)
from cygno.reco.quality.plots import (
    plot_cmos_trace,
    plot_histogram,
)

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
    plots: bool = True,
) -> QualityReport:
    """Histograms, light yield, comparison and flag for one run, written under ``prefix``.

    Writes ``<name>.json`` + ``<name>.png`` per histogram, ``cmos_trace.png``,
    ``plots.json`` (what the plots overlay: reference histograms, fit, CMOS trace) and
    ``summary.json`` (:meth:`QualityReport.to_dict`). ``plots=False`` leaves the PNGs to
    be drawn on request (:func:`draw_plot`); either way PNGs of an earlier judgement of
    the run are removed, and ``files`` names every PNG's key.

    ``fe55``: ``True`` (a ⁵⁵Fe run) fits the light yield and makes the run a ``warning``
    when no credible line is found, ``False`` skips the fit, ``None`` keeps the light
    yield only when one is found — a guess that a noise spectrum cut sharply by a
    threshold can fool, so pass the run's kind when it is known (:func:`fe55_from_logbook`).
    ``pedestal``: maps with ``.mean`` and ``.sigma`` or their :class:`PedestalMonitor`.
    ``extra`` (e.g. tag, reco version) is merged into the summary.
    """
    data = reco if isinstance(reco, RecoArrays) else read_reco(reco)
    if pedestal is not None:
        pedestal = pedestal_monitor(pedestal, config)  # once, for histograms and summary
    histograms = build_histograms(
        data, pedestal, config, like=reference.histograms if reference is not None else None
    )
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
    for name, h in histograms.items():
        files[f"{name}.json"] = _write_bytes(
            out, _join(prefix, f"{name}.json"), _dumps(histogram_to_json(h))
        )
    overlays = _plot_inputs(data, histograms, reference, fit, config)
    files[PLOTS_JSON] = _write_bytes(out, _join(prefix, PLOTS_JSON), _dumps(overlays))
    drawn = [*histograms, CMOS_TRACE]
    files.update({f"{name}.png": _join(prefix, f"{name}.png") for name in drawn})
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
    _forget_pngs(out, prefix)  # after the summary: see plot_on_request
    if plots:
        for name, png in _draw(out, prefix, drawn).items():
            _write_bytes(out, files[f"{name}.png"], png)
    return report


# --------------------------------------------------------------------------- plots

#: The plots' inputs beyond the histograms, beside them in the run's folder.
PLOTS_JSON = "plots.json"
#: The plot of the picture integrals in event order (not a histogram).
CMOS_TRACE = "cmos_trace"


def _fit_to_json(fit: LightYield) -> dict[str, Any]:
    return {f.name: getattr(fit, f.name) for f in fields(fit) if f.name != "histogram"}


def _fit_from_json(doc: Mapping[str, Any], histogram: hist.Hist) -> LightYield:
    def number(value: Any) -> Any:
        return np.nan if value is None else value  # JSON keeps no NaN

    special = ("fit_range", "params", "problem")
    return LightYield(
        **{name: number(value) for name, value in doc.items() if name not in special},
        fit_range=tuple(doc["fit_range"]),
        params=tuple(number(p) for p in doc["params"]),
        problem=doc["problem"],
        histogram=histogram,
    )


def _plot_inputs(
    data: RecoArrays,
    histograms: Mapping[str, hist.Hist],
    reference: Reference | None,
    fit: LightYield | None,
    config: QualityConfig,
) -> dict[str, Any]:
    """What the plots show beyond the run's own histograms, so that they can be drawn
    from the store alone: the reference histograms as overlaid, the ⁵⁵Fe fit curve and
    the picture integrals in event order."""
    x = data.event if np.isfinite(data.event).all() else np.arange(data.pictures, dtype=float)
    return {
        "label": f"run {data.run}" if data.run is not None else "this run",
        "reference_label": f"reference run {reference.run}" if reference else "reference",
        "reference": {
            name: histogram_to_json(reference.histograms[name])
            for name in histograms
            if reference is not None and name in reference.histograms
        },
        "fe55_fit": _fit_to_json(fit) if fit is not None and "fe55_peak" in histograms else None,
        CMOS_TRACE: {
            "event": x.tolist(),
            "cmos_integral": data.cmos_integral.tolist(),
            "spark_factor": config.spark_factor,
        },
    }


def _draw(store: Store, prefix: str, names: list[str]) -> dict[str, bytes]:
    """PNGs of the run's plots ``names`` (those it has), from its JSON files."""
    plots_key = _join(prefix, PLOTS_JSON)
    if not store.exists(plots_key):
        return {}  # judged before plots.json: its PNGs were drawn at once
    inputs = _read_json(store, plots_key)
    report = _read_json(store, _join(prefix, "summary.json"))
    comparisons = {c["name"]: Comparison(**c) for c in report["comparisons"]}
    drawn = {}
    for name in names:
        if name == CMOS_TRACE:
            trace = inputs[CMOS_TRACE]
            drawn[name] = plot_cmos_trace(
                np.asarray(trace["event"], dtype=float),
                np.asarray(trace["cmos_integral"], dtype=float),  # null → NaN
                trace["spark_factor"],
            )
        elif name in report["histograms"]:
            h = histogram_from_json(_read_json(store, _join(prefix, f"{name}.json")))
            ref = inputs["reference"].get(name)
            fit = inputs["fe55_fit"] if name == "fe55_peak" else None
            drawn[name] = plot_histogram(
                h,
                histogram_from_json(ref) if ref is not None else None,
                comparisons.get(name),
                label=inputs["label"],
                reference_label=inputs["reference_label"],
                light_yield=_fit_from_json(fit, h) if fit is not None else None,
            )
    return drawn


def draw_plot(store: Store, prefix: str, name: str) -> bytes | None:
    """PNG of plot ``name`` (``<name>.png``) of the run judged under ``prefix``, drawn
    from the files :func:`run_quality` wrote there; None when the run has no such plot."""
    return _draw(store, prefix, [name]).get(name)


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
