"""PNG plots of the monitoring histograms and the CMOS trace."""

from __future__ import annotations

import io

import hist
import numpy as np

from cygno.reco.quality.compare import (
    Comparison,
)
from cygno.reco.quality.histograms import (
    _finite,
    _is_log,
)
from cygno.reco.quality.lightyield import (
    LightYield,
)

# --------------------------------------------------------------------------- plots


_FLAG_COLOURS = {"good": "tab:green", "warning": "tab:orange", "bad": "tab:red", None: "tab:gray"}


def _figure(size: tuple[float, float] = (7.0, 5.0)):
    from matplotlib.figure import Figure

    fig = Figure(figsize=size)  # fixed margins: constrained layout costs ~1 s per plot
    fig.subplots_adjust(left=0.12, right=0.95, bottom=0.13, top=0.88)
    return fig


def _title(ax, text: str) -> None:
    """The title at a fixed place above the axes, where matplotlib would put it: placing
    it automatically measures every tick label first, a third of a plot's drawing time."""
    ax.set_title(text, fontsize="medium", y=1.0)


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    return buffer.getvalue()


def _steps(ax, counts: np.ndarray, edges: np.ndarray, yerr: np.ndarray | None = None, **style):
    """A step histogram, with error bars at the bin centres when given (matplotlib's own
    `stairs`: importing mplhep for this would cost a process seconds)."""
    ax.stairs(counts, edges, **style)
    if yerr is not None:
        centres = 0.5 * (edges[1:] + edges[:-1])
        ax.errorbar(centres, counts, yerr=yerr, fmt="none", ecolor=style.get("color"))


def plot_histogram(
    h: hist.Hist,
    reference: hist.Hist | None = None,
    comparison: Comparison | None = None,
    label: str = "this run",
    reference_label: str = "reference",
    light_yield: LightYield | None = None,
) -> bytes:
    """PNG of one histogram, the reference (scaled to the same area) overlaid."""
    fig = _figure()
    ax = fig.add_subplot()
    counts = h.values(flow=False)
    if h.ndim == 1:
        edges = h.axes[0].edges
        _steps(ax, counts, edges, np.sqrt(counts), label=label, color="k")
        if reference is not None and reference.values().sum() > 0:
            ref = reference.values(flow=False)
            scaled = ref * counts.sum() / ref.sum()
            _steps(
                ax,
                scaled,
                reference.axes[0].edges,
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
    _title(ax, title)
    return _png(fig)


def plot_cmos_trace(event: np.ndarray, integral: np.ndarray, spark_factor: float = 10.0) -> bytes:
    """Picture integral vs event number, sparks (> factor × median) marked in red."""
    fig = _figure((8.0, 4.0))
    ax = fig.add_subplot()
    x, y = event, integral
    ax.plot(x, y, ".", color="k", markersize=3, label="picture")
    finite = _finite(y)
    if len(finite):
        limit = spark_factor * float(np.median(finite))
        spark = y > limit
        ax.plot(x[spark], y[spark], "o", color="tab:red", label=f"spark (> {limit:.3g})")
        ax.axhline(limit, color="tab:red", linestyle=":")
        if finite.min() > 0:
            ax.set_yscale("log")
    ax.set_xlabel("event")
    ax.set_ylabel("picture integral [ADC]")
    _title(ax, "CMOS integral per picture (spark monitor)")
    ax.legend(loc="best", fontsize="small")
    return _png(fig)
