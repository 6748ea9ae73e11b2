"""Per-cluster features (RECONSTRUCTION.md "Output"), with production's two defects fixed:
the angle is that of the MAJOR principal axis and the main profile peak is the TALLEST.

"Hits" of a cluster are all full-resolution pixels under its macro-pixels, taken from the
pedestal-subtracted picture without zero suppression. They are gathered once for all
clusters (contiguous per cluster), then one numba kernel computes every quantity.
Coordinates: x = first array index of the working picture, y = second. Positions on the
longitudinal / transverse profiles (Gaussian means, sc_lp0mean) are measured from the start
of the profile, i.e. from the cluster's first hit along that axis, as in production.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from cygno.reco.ransac import solve3

# Branch order = column order of the kernel's output matrix.
BRANCHES: tuple[str, ...] = (
    "sc_size",
    "sc_nhits",
    "sc_integral",
    "sc_rms",
    "sc_xmean",
    "sc_ymean",
    "sc_xmin",
    "sc_xmax",
    "sc_ymin",
    "sc_ymax",
    "sc_theta",
    "sc_length",
    "sc_width",
    "sc_longrms",
    "sc_latrms",
    "sc_lgaussamp",
    "sc_lgaussmean",
    "sc_lgausssigma",
    "sc_lchi2",
    "sc_lstatus",
    "sc_tgaussamp",
    "sc_tgaussmean",
    "sc_tgausssigma",
    "sc_tchi2",
    "sc_tstatus",
    "sc_lp0amplitude",
    "sc_lp0prominence",
    "sc_lp0mean",
    "sc_lp0fwhm",
    "sc_tp0fwhm",
    "sc_tracklike",
    "sc_energy",
)
INT_BRANCHES = frozenset(
    {"sc_size", "sc_nhits", "sc_xmin", "sc_xmax", "sc_ymin", "sc_ymax"}
    | {"sc_lstatus", "sc_tstatus", "sc_tracklike"}
)
_COL = {name: i for i, name in enumerate(BRANCHES)}

# Gaussian fit status: converged, iteration limit reached, skipped (< 4 bins or no signal).
FIT_OK, FIT_NOT_CONVERGED, FIT_SKIPPED = 0, 1, 2


@dataclass(frozen=True)
class FeatureParams:
    """rebin: macro-pixel size in full-resolution pixels; calibration: keV per ADC count
    (None: sc_energy = -1); profile_bin: profile bin width in pixels; fit_max_iter:
    Levenberg–Marquardt iterations of the profile Gaussian fits."""

    rebin: int = 4
    calibration: float | None = None
    profile_bin: float = 1.0
    fit_max_iter: int = 20


def cluster_features(
    z: np.ndarray,
    zs: np.ndarray,
    points: np.ndarray,
    labels: np.ndarray,
    tracklike: np.ndarray,
    params: FeatureParams | None = None,
) -> dict[str, np.ndarray]:
    """Per-cluster arrays named as the `Events` branches, sorted by integral, descending.

    z: pedestal-subtracted full-resolution picture; zs: zero-suppressed picture or mask
    (a hit counts in sc_nhits where zs > 0); points (n, 2) macro-pixel [x, y] and their
    cluster labels (-1 noise); tracklike: one flag per cluster id.
    """
    params = params or FeatureParams()
    labels = np.asarray(labels)
    n_clusters = int(labels.max()) + 1 if labels.size and labels.max() >= 0 else 0
    if n_clusters == 0:
        return {b: np.empty(0, np.int32 if b in INT_BRANCHES else np.float32) for b in BRANCHES}
    hx, hy, hl = _hit_pixels(np.asarray(points), labels, params.rebin, z.shape)
    counts = np.bincount(hl, minlength=n_clusters)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    out = np.zeros((n_clusters, len(BRANCHES)))
    _kernel(
        hx, hy, z[hx, hy].astype(np.float64), zs[hx, hy] > 0, starts, counts,
        float(params.profile_bin), int(params.fit_max_iter), out,
    )  # fmt: skip
    out[:, _COL["sc_tracklike"]] = np.asarray(tracklike, bool)[:n_clusters]
    integral = out[:, _COL["sc_integral"]]
    out[:, _COL["sc_energy"]] = integral * params.calibration if params.calibration else -1.0
    out = out[np.argsort(-integral, kind="stable")]
    return {
        b: out[:, i].astype(np.int32 if b in INT_BRANCHES else np.float32)
        for i, b in enumerate(BRANCHES)
    }


def _hit_pixels(points, labels, rebin, shape):
    """All full-resolution pixels under the labelled macro-pixels, contiguous per cluster."""
    sel = np.nonzero(labels >= 0)[0]
    sel = sel[np.argsort(labels[sel], kind="stable")]
    d = np.arange(rebin)
    ox, oy = (a.ravel() for a in np.meshgrid(d, d, indexing="ij"))
    hx = (points[sel, 0, None].astype(np.int64) * rebin + ox).ravel()
    hy = (points[sel, 1, None].astype(np.int64) * rebin + oy).ravel()
    hl = np.repeat(labels[sel], rebin * rebin)
    inside = (hx < shape[0]) & (hy < shape[1])
    return hx[inside], hy[inside], hl[inside]


@njit(cache=True)
def _kernel(hx, hy, hz, hzs, starts, counts, bw, max_iter, out):
    for c in range(starts.shape[0]):
        s, n = starts[c], counts[c]
        _cluster(hx[s : s + n], hy[s : s + n], hz[s : s + n], hzs[s : s + n], bw, max_iter, out[c])


@njit(cache=True)
def _cluster(x, y, z, zs, bw, max_iter, o):
    n = x.shape[0]
    if n == 0:
        return
    w = np.maximum(z, 0.0)
    wsum = w.sum()
    if wsum <= 0.0:  # no positive signal: fall back to plain geometry
        w = np.ones(n)
        wsum = float(n)
    zsum = z.sum()
    xm = (w * x).sum() / wsum
    ym = (w * y).sum() / wsum
    dx = x - xm
    dy = y - ym
    cxx = (w * dx * dx).sum() / wsum
    cyy = (w * dy * dy).sum() / wsum
    cxy = (w * dx * dy).sum() / wsum
    # Major axis: eigenvector of the largest eigenvalue of the weighted covariance.
    th = 0.5 * math.atan2(2.0 * cxy, cxx - cyy)
    ct, st = math.cos(th), math.sin(th)
    u = dx * ct + dy * st
    v = -dx * st + dy * ct
    o[0] = n
    o[1] = zs.sum()
    o[2] = zsum
    o[3] = math.sqrt(max((z * z).sum() / n - (zsum / n) ** 2, 0.0))
    o[4], o[5] = xm, ym
    o[6], o[7], o[8], o[9] = x.min(), x.max(), y.min(), y.max()
    o[10] = math.degrees(th)
    o[11] = u.max() - u.min()
    o[12] = v.max() - v.min()
    o[13] = math.sqrt((w * u * u).sum() / wsum)
    o[14] = math.sqrt((w * v * v).sum() / wsum)
    lc, lp = _profile(u, z, bw)
    tc, tp = _profile(v, z, bw)
    _gauss_fit(lc, lp, max_iter, o[15:20])
    _gauss_fit(tc, tp, max_iter, o[20:25])
    o[25], o[26], o[27], o[28] = _tallest_peak(lc, lp, bw)
    o[29] = _tallest_peak(tc, tp, bw)[3]


@njit(cache=True)
def _profile(u, z, bw):
    """Hit values summed in bins of width bw along u; returns (bin centres, sums), the
    centres measured from the lowest u.

    Each hit is shared linearly between the two nearest bin centres (cloud in cell): on a
    tilted axis the pixel centres fall irregularly into bins, and plain binning would
    alias that into a comb-like profile.
    """
    lo = u.min()
    nb = int((u.max() - lo) / bw) + 1
    p = np.zeros(nb)
    for i in range(u.shape[0]):
        t = (u[i] - lo) / bw - 0.5
        k = math.floor(t)
        f = t - k
        if k >= 0:
            p[k] += (1.0 - f) * z[i]
        else:
            p[0] += (1.0 - f) * z[i]
        if k + 1 < nb:
            p[k + 1] += f * z[i]
        else:
            p[nb - 1] += f * z[i]
    centres = (np.arange(nb) + 0.5) * bw
    return centres, p


@njit(cache=True)
def _tallest_peak(centres, p, bw):
    """(amplitude, prominence, position, full width at half prominence) of the highest bin.

    The profile is padded with zeros, so a maximum at an edge is still a peak; prominence
    and width follow scipy.signal's definitions (width at peak − prominence/2).
    """
    i = np.argmax(p)
    peak = p[i]
    left_min = min(0.0, p[: i + 1].min())
    right_min = min(0.0, p[i:].min())
    prom = peak - max(left_min, right_min)
    ref = peak - 0.5 * prom
    nb = p.shape[0]
    j = i
    while j > 0 and p[j - 1] > ref:
        j -= 1
    lv = p[j - 1] if j > 0 else 0.0
    left = j - (p[j] - ref) / (p[j] - lv) if p[j] != lv else float(j)
    k = i
    while k < nb - 1 and p[k + 1] > ref:
        k += 1
    rv = p[k + 1] if k < nb - 1 else 0.0
    right = k + (p[k] - ref) / (p[k] - rv) if p[k] != rv else float(k)
    return peak, prom, centres[i], (right - left) * bw


@njit(cache=True)
def _gauss_eval(c, a, m, s, g, chi_w, p):
    chi = 0.0
    for i in range(c.shape[0]):
        g[i] = a * math.exp(-0.5 * ((c[i] - m) / s) ** 2)
        chi += (p[i] - g[i]) ** 2 * chi_w[i]
    return chi


@njit(cache=True)
def _gauss_fit(c, p, max_iter, o):
    """Levenberg–Marquardt fit of a*exp(-(c-m)²/2s²) seeded by moments.

    Bin variance max(|p|, 1) (photon-counting-like). Writes amp, mean, sigma,
    chi2/ndf and status into o[0:5].
    """
    nb = c.shape[0]
    pos = np.maximum(p, 0.0)
    tot = pos.sum()
    a = p.max()
    if tot > 0:
        m = (pos * c).sum() / tot
        s = math.sqrt(max((pos * (c - m) ** 2).sum() / tot, 0.0))
    else:
        m = c.mean()
        s = 0.0
    width = c[1] - c[0] if nb > 1 else 1.0
    s = max(s, 0.5 * width)
    o[0], o[1], o[2], o[3], o[4] = a, m, s, 0.0, FIT_SKIPPED
    if nb < 4 or a <= 0:
        return
    chi_w = 1.0 / np.maximum(np.abs(p), 1.0)
    g = np.empty(nb)
    chi = _gauss_eval(c, a, m, s, g, chi_w, p)
    lam = 1e-3
    status = FIT_NOT_CONVERGED
    jtj = np.empty((3, 3))
    jtr = np.empty(3)
    for _ in range(max_iter):
        jtj[:] = 0.0
        jtr[:] = 0.0
        for i in range(nb):
            e = g[i] / a if a != 0 else 0.0
            t = (c[i] - m) / s
            d0 = e
            d1 = g[i] * t / s
            d2 = g[i] * t * t / s
            r = p[i] - g[i]
            jac = (d0, d1, d2)
            for q in range(3):
                jtr[q] += jac[q] * r * chi_w[i]
                for k in range(3):
                    jtj[q, k] += jac[q] * jac[k] * chi_w[i]
        improved = False
        done = False
        for _ in range(8):
            h = jtj.copy()
            for q in range(3):
                h[q, q] *= 1.0 + lam
            d, ok = solve3(h, jtr)
            if not ok:
                lam *= 10.0
                continue
            na, nm, ns = a + d[0], m + d[1], s + d[2]
            if ns <= 0:
                lam *= 10.0
                continue
            ng = np.empty(nb)
            nchi = _gauss_eval(c, na, nm, ns, ng, chi_w, p)
            if nchi < chi:
                done = chi - nchi < 1e-6 * max(chi, 1e-12)
                a, m, s, chi, g = na, nm, ns, nchi, ng
                lam = max(lam / 10.0, 1e-9)
                improved = True
                break
            lam *= 10.0
        if not improved or done:
            status = FIT_OK
            break
    ndf = nb - 3
    o[0], o[1], o[2], o[3], o[4] = a, m, abs(s), chi / ndf if ndf > 0 else chi, status
