"""Comparison with a reference run (χ²/ndf, Kolmogorov distance) and the run's flag."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import hist
import numpy as np
from scipy import stats

from cygno.reco.quality.common import (
    FLAGS,
    Flag,
    Thresholds,
)

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
