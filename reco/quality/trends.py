"""Trend plots and tables across runs."""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from cygno.reco.quality.common import (
    FLAGS,
    Store,
    _dumps,
    _forget_pngs,
    _join,
    _read_json,
    _write_bytes,
)
from cygno.reco.quality.plots import (
    _FLAG_COLOURS,
    _figure,
    _png,
    _title,
)

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
    _title(ax, f"{label} vs run")
    ax.xaxis.get_major_locator().set_params(integer=True)
    if ax.has_data():
        ax.legend(loc="best", fontsize="small")
    else:
        ax.text(0.5, 0.5, "no runs with this number yet", transform=ax.transAxes, ha="center")
    return _png(fig)


def write_trends(
    summaries: Iterable[Mapping[str, Any]], out: Store, prefix: str, plots: bool = True
) -> dict[str, str]:
    """Write ``summaries.json`` and redraw the trend plots from it (``plots=False``:
    remove the old ones, to be drawn on request by :func:`draw_trend`); returns the keys.

    Call after each run with all summaries of one reco version and tag (the catalog's
    quality reports): the output depends only on the list, so rewriting is idempotent
    and concurrent writers converge to the newest complete list.
    """
    rows = sorted((dict(s) for s in summaries if s.get("run") is not None), key=lambda s: s["run"])
    files = {f"{name}.png": _join(prefix, f"{name}.png") for name in TREND_PLOTS}
    files["summaries.json"] = _write_bytes(out, _join(prefix, "summaries.json"), _dumps(rows))
    _forget_pngs(out, prefix)  # after the data: see plot_on_request
    if plots:
        for name, (key, err_key, label) in TREND_PLOTS.items():
            _write_bytes(out, files[f"{name}.png"], plot_trend(rows, key, err_key, label))
    return files


def draw_trend(store: Store, prefix: str, name: str) -> bytes | None:
    """PNG of trend plot ``name`` from the ``summaries.json`` under ``prefix``; None when
    there is no such trend plot."""
    source = _join(prefix, "summaries.json")
    if name not in TREND_PLOTS or not store.exists(source):
        return None
    return plot_trend(_read_json(store, source), *TREND_PLOTS[name])


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
