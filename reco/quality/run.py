"""One run end to end: histograms, fit, comparison, plots and report written to a store."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import IO, Any

import hist

from cygno.reco.quality.common import (
    Flag,
    QualityConfig,
    Store,
    Thresholds,
    _dumps,
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
