"""Per-cluster features exactly as CYGNO's production (Reco_v2.1.0) defines them, plus
corrected variants of its defects under new names (docs/reconstruction.md lists every
branch with its definition and quirks).

"Hits" of a cluster are all full-resolution pixels under its macro-pixels, taken from the
pedestal-subtracted picture without zero suppression, in production's order (macro-pixels
sorted by (x, y), then the rebin×rebin pixels beneath each, row by row). They are gathered
once for all clusters (contiguous per cluster), then one numba kernel computes everything.
Coordinates: x = first array index of the working picture, y = second.

Production's geometry, in short: the principal axes come from the covariance of the
macro-pixel coordinates; every hit is rotated by the major axis about their mean; length
and width are the extents of the rotated hits; longrms/latrms come from a unit-bin 2-D
histogram the hits *overwrite*; the profiles have variable bins (a new bin after 1/relErr²
integer positions' worth of hits) and are filled at the rotated position minus its minimum;
the Gaussian fits are χ² fits with ROOT's limits; the profile peaks are scipy's find_peaks
with widths in bins and the "main" peak is the one at the largest position.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from cygno.reco.ransac import solve3

# Branch order = column order of the kernel's output matrix. Production's branches first
# (all float32 there, as here), then ours.
PRODUCTION_BRANCHES: tuple[str, ...] = (
    "sc_size",
    "sc_nhits",
    "sc_integral",
    "sc_corrintegral",
    "sc_rms",
    "sc_energy",
    "sc_pathlength",
    "sc_theta",
    "sc_length",
    "sc_width",
    "sc_longrms",
    "sc_latrms",
    "sc_lfullrms",
    "sc_tfullrms",
    "sc_lp0amplitude",
    "sc_lp0prominence",
    "sc_lp0fwhm",
    "sc_lp0mean",
    "sc_tp0fwhm",
    "sc_xmean",
    "sc_ymean",
    "sc_xmax",
    "sc_xmin",
    "sc_ymax",
    "sc_ymin",
    "sc_pearson",
    "sc_tgaussamp",
    "sc_tgaussmean",
    "sc_tgausssigma",
    "sc_tchi2",
    "sc_tstatus",
    "sc_lgaussamp",
    "sc_lgaussmean",
    "sc_lgausssigma",
    "sc_lchi2",
    "sc_lstatus",
)
# Corrected variants of production's defects and our additions.
EXTRA_BRANCHES: tuple[str, ...] = (
    "sc_theta_major",
    "sc_lpeakamplitude",
    "sc_lpeakprominence",
    "sc_lpeakmean",
    "sc_lpeakfwhm",
    "sc_tpeakfwhm",
    "sc_tracklike",
)
BRANCHES: tuple[str, ...] = PRODUCTION_BRANCHES + EXTRA_BRANCHES
INT_BRANCHES = frozenset({"sc_tracklike"})
_COL = {name: i for i, name in enumerate(BRANCHES)}
# Kernel column numbers (numba reads module-level ints as constants).
(
    _SIZE,
    _NHITS,
    _INTEGRAL,
    _CORRINTEGRAL,
    _RMS,
    _XMEAN,
    _YMEAN,
    _XMIN,
    _XMAX,
    _YMIN,
    _YMAX,
    _THETA,
    _THETA_MAJOR,
    _LENGTH,
    _WIDTH,
    _LONGRMS,
    _LATRMS,
    _LFULLRMS,
    _LGAUSSAMP,
    _LSTATUS,
    _TFULLRMS,
    _TGAUSSAMP,
    _TSTATUS,
    _LP0AMPLITUDE,
    _LP0PROMINENCE,
    _LP0MEAN,
    _LP0FWHM,
    _LPEAKAMPLITUDE,
    _LPEAKPROMINENCE,
    _LPEAKMEAN,
    _LPEAKFWHM,
    _TP0FWHM,
    _TPEAKFWHM,
) = (
    _COL[f"sc_{n}"]
    for n in (
        "size",
        "nhits",
        "integral",
        "corrintegral",
        "rms",
        "xmean",
        "ymean",
        "xmin",
        "xmax",
        "ymin",
        "ymax",
        "theta",
        "theta_major",
        "length",
        "width",
        "longrms",
        "latrms",
        "lfullrms",
        "lgaussamp",
        "lstatus",
        "tfullrms",
        "tgaussamp",
        "tstatus",
        "lp0amplitude",
        "lp0prominence",
        "lp0mean",
        "lp0fwhm",
        "lpeakamplitude",
        "lpeakprominence",
        "lpeakmean",
        "lpeakfwhm",
        "tp0fwhm",
        "tpeakfwhm",
    )
)

# Production's "not computed" value, and its constants for sc_pearson (the Pearson test
# is commented out and 999 written instead) and sc_pathlength (-1 without calibration).
MISSING = -999.0
PEARSON_UNSET = 999.0
PATHLENGTH_UNSET = -1.0
# Fit status: ROOT's CovMatrixStatus of a converged fit (3: full, accurate), and
# production's codes for an empty profile / a fit that could not run.
FIT_OK, FIT_FAILED = 3, -1
# Production skips position variables (writes 0) below this integral.
MIN_INTEGRAL_FOR_POSITION = 10.0


def corr_integral_coefficients() -> tuple[float, float, float]:
    """(a, b, c) of production's per-hit saturation correction a·z² + b·z + c
    (clusterTools.Cluster.corr_integral, LEMON constants)."""
    e, d2, omega, alpha, sigma0, a0 = 1.60217662e-7, 0.015625, 0.00018, 0.08, 2.5, 0.1855
    return (
        a0 * e / (d2 * alpha * omega),
        1.0 - 2 * a0 * sigma0,
        a0 * sigma0 * sigma0 * (d2 * alpha * omega) / e,
    )


@dataclass(frozen=True)
class FeatureParams:
    """rebin: macro-pixel size in full-resolution pixels; calibration: keV per ADC count
    (None: sc_energy = -1); long_rel_error / lat_rel_error: relative error per profile bin
    (a bin closes after 1/relErr² hits' integer positions); peak_*: scipy find_peaks
    conditions on the profiles (height, distance and width in bins, prominence)."""

    rebin: int = 4
    calibration: float | None = None
    long_rel_error: float = 0.2
    lat_rel_error: float = 0.3
    peak_height: float = 3.0
    peak_distance: int = 6
    peak_prominence: float = 2.0
    peak_width: float = 2.0
    redpix_max_length: float = 100000.0
    redpix_min_integral: float = 850.0


# The picture's reduced pixels (production's scfullinfo): every hit of the clusters with
# sc_length < redpix_max_length and sc_integral > redpix_min_integral, cluster after
# cluster in the sc_ order; sc_redpixIdx is a cluster's first index there (-1: not saved).
REDPIX_BRANCHES: dict[str, str] = {
    "redpix_ix": "int32",
    "redpix_iy": "int32",
    "redpix_iz": "float32",
}
REDPIX_INDEX = "sc_redpixIdx"


def empty_features() -> dict[str, np.ndarray]:
    out = {b: np.empty(0, np.int32 if b in INT_BRANCHES else np.float32) for b in BRANCHES}
    out[REDPIX_INDEX] = np.empty(0, np.float32)
    out.update({b: np.empty(0, t) for b, t in REDPIX_BRANCHES.items()})
    return out


def cluster_features(
    z,
    zs,
    points: np.ndarray,
    labels: np.ndarray,
    tracklike: np.ndarray,
    params: FeatureParams | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per-cluster arrays named as the `Events` branches, sorted by integral, descending
    (plus sc_redpixIdx and the picture's redpix_* arrays), and the cluster id of each row
    (so callers can find each row's macro-pixels).

    z: pedestal-subtracted full-resolution picture (anything indexable by (x, y) arrays);
    zs: zero-suppressed values (a hit counts in sc_nhits where zs > 0); points (n, 2)
    macro-pixel [x, y] and their cluster labels (-1 noise); tracklike: one flag per
    cluster id. Clusters of a single macro-pixel are dropped, as production does.
    """
    params = params or FeatureParams()
    labels = np.asarray(labels)
    points = np.asarray(points)
    keep = labels >= 0
    if keep.any():
        sizes = np.bincount(labels[keep])
        keep &= sizes[np.maximum(labels, 0)] > 1
    if not keep.any():
        return empty_features(), np.empty(0, np.int32)
    sel = np.nonzero(keep)[0]
    # production's order: by cluster, then macro-pixels sorted by (x, y) (np.unique)
    sel = sel[np.lexsort((points[sel, 1], points[sel, 0], labels[sel]))]
    ids, starts_m, counts_m = np.unique(labels[sel], return_index=True, return_counts=True)
    px = points[sel, 0].astype(np.int64)
    py = points[sel, 1].astype(np.int64)
    r = params.rebin
    d = np.arange(r)
    ox, oy = (a.ravel() for a in np.meshgrid(d, d, indexing="ij"))
    hx = (px[:, None] * r + ox).ravel()
    hy = (py[:, None] * r + oy).ravel()
    hz = np.asarray(z[hx, hy], dtype=np.float64)
    hzs = np.asarray(zs[hx, hy]) > 0
    out = np.zeros((len(ids), len(BRANCHES)))
    _kernel(
        px.astype(np.float64), py.astype(np.float64), starts_m, counts_m, r,
        hx, hy, hz, hzs, np.array(corr_integral_coefficients()),
        np.array([1.0 / params.long_rel_error**2, 1.0 / params.lat_rel_error**2]),
        np.array([params.peak_height, params.peak_prominence, params.peak_width]),
        int(params.peak_distance), out,
    )  # fmt: skip
    out[:, _COL["sc_tracklike"]] = np.asarray(tracklike, bool)[ids]
    out[:, _COL["sc_pearson"]] = PEARSON_UNSET
    out[:, _COL["sc_pathlength"]] = PATHLENGTH_UNSET
    integral = out[:, _COL["sc_integral"]]
    out[:, _COL["sc_energy"]] = integral * params.calibration if params.calibration else -1.0
    order = np.argsort(-integral, kind="stable")
    out = out[order]
    arrays = {
        b: out[:, i].astype(np.int32 if b in INT_BRANCHES else np.float32)
        for i, b in enumerate(BRANCHES)
    }
    saved = (out[:, _COL["sc_length"]] < params.redpix_max_length) & (
        out[:, _COL["sc_integral"]] > params.redpix_min_integral
    )
    hits = [np.arange(starts_m[c] * r * r, (starts_m[c] + counts_m[c]) * r * r) for c in order]
    take = np.concatenate([h for h, keep in zip(hits, saved, strict=True) if keep] or [[]])
    take = take.astype(np.int64)
    sizes = np.array([len(h) if keep else 0 for h, keep in zip(hits, saved, strict=True)])
    first = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    arrays[REDPIX_INDEX] = np.where(saved, first, -1).astype(np.float32)
    arrays["redpix_ix"] = hx[take].astype(np.int32)
    arrays["redpix_iy"] = hy[take].astype(np.int32)
    arrays["redpix_iz"] = (np.round(hz[take] * 10) / 10).astype(np.float32)
    return arrays, ids[order].astype(np.int32)


@njit(cache=True)
def _kernel(px, py, starts_m, counts_m, rebin, hx, hy, hz, hzs, corr, min_entries, pk, dist, out):
    rr = rebin * rebin
    for c in range(starts_m.shape[0]):
        sm, nm = starts_m[c], counts_m[c]
        s, n = sm * rr, nm * rr
        _cluster(
            px[sm : sm + nm], py[sm : sm + nm],
            hx[s : s + n].astype(np.float64), hy[s : s + n].astype(np.float64),
            hz[s : s + n], hzs[s : s + n], corr, min_entries, pk, dist, out[c],
        )  # fmt: skip


@njit(cache=True)
def _cluster(px, py, x, y, z, zs, corr, min_entries, pk, dist, o):
    n = x.shape[0]
    zsum = z.sum()
    o[_SIZE] = n
    o[_NHITS] = zs.sum()
    o[_INTEGRAL] = zsum
    o[_CORRINTEGRAL] = (corr[0] * z * z + corr[1] * z + corr[2]).sum()
    o[_RMS] = math.sqrt(max((z * z).sum() / n - (zsum / n) ** 2, 0.0))
    if zsum >= MIN_INTEGRAL_FOR_POSITION:
        w = np.maximum(z, 0.0)
        o[_XMEAN] = (w * x).sum() / w.sum()
        o[_YMEAN] = (w * y).sum() / w.sum()
        o[_XMIN], o[_XMAX] = x.min(), x.max()
        o[_YMIN], o[_YMAX] = y.min(), y.max()

    # Axes: covariance (N-1) of the macro-pixel coordinates, LAPACK's eig as numpy's.
    mx, my = px.mean(), py.mean()
    m = px.shape[0]
    cov = np.empty((2, 2))
    cov[0, 0] = ((px - mx) ** 2).sum() / (m - 1)
    cov[1, 1] = ((py - my) ** 2).sum() / (m - 1)
    cov[0, 1] = cov[1, 0] = ((px - mx) * (py - my)).sum() / (m - 1)
    vals, vecs = np.linalg.eig(cov)
    o[_THETA] = math.degrees(math.atan2(vecs[1, 0], vecs[0, 0]))
    major = np.argmax(vals)
    ct, st = vecs[0, major], vecs[1, major]
    theta_major = math.degrees(math.atan2(st, ct))
    if theta_major <= -90.0:
        theta_major += 180.0
    elif theta_major > 90.0:
        theta_major -= 180.0
    o[_THETA_MAJOR] = theta_major

    # Hits rotated by the major axis about the macro-pixel mean (full-resolution hits,
    # macro-pixel pivot: production's mix, which matters only through int() below).
    rx = mx + ct * (x - mx) + st * (y - my)
    ry = my - st * (x - mx) + ct * (y - my)
    rxmin, rymin = rx.min(), ry.min()
    length, width = rx.max() - rxmin, ry.max() - rymin
    o[_LENGTH], o[_WIDTH] = length, width
    o[_LONGRMS], o[_LATRMS] = _overwrite_hist_rms(rx - rxmin, ry - rymin, z, length, width)

    for axis in range(2):
        r = rx if axis == 0 else ry
        edges, content, err2, mean, rms = _profile(r, z, min_entries[axis])
        if axis == 0:
            o[_LFULLRMS] = rms
            _gauss_fit(edges, content, err2, mean, rms, o[_LGAUSSAMP : _LSTATUS + 1])
        else:
            o[_TFULLRMS] = rms
            _gauss_fit(edges, content, err2, mean, rms, o[_TGAUSSAMP : _TSTATUS + 1])
        peaks = _find_peaks(content, pk[0], dist, pk[1], pk[2])
        centres = 0.5 * (edges[1:] + edges[:-1])
        last = -1
        tallest = -1
        for k in range(peaks.shape[0]):
            if last < 0 or peaks[k, 0] > peaks[last, 0]:
                last = k
            if tallest < 0 or peaks[k, 1] > peaks[tallest, 1]:
                tallest = k
        main = (MISSING, MISSING, MISSING, MISSING)
        best = (MISSING, MISSING, MISSING, MISSING)
        if last >= 0:
            p = peaks[last]
            main = (p[1], p[2], centres[int(p[0])], p[4] - p[3])
            p = peaks[tallest]
            span = _interp(centres, p[4]) - _interp(centres, p[3])
            best = (p[1], p[2], centres[int(p[0])], span)
        if axis == 0:
            o[_LP0AMPLITUDE], o[_LP0PROMINENCE] = main[0], main[1]
            o[_LP0MEAN], o[_LP0FWHM] = main[2], main[3]
            o[_LPEAKAMPLITUDE], o[_LPEAKPROMINENCE] = best[0], best[1]
            o[_LPEAKMEAN], o[_LPEAKFWHM] = best[2], best[3]
        else:
            o[_TP0FWHM] = main[3]
            o[_TPEAKFWHM] = best[3]


@njit(cache=True)
def _round_half_even(v):
    f = math.floor(v)
    d = v - f
    if d > 0.5 or (d == 0.5 and f % 2 == 1):
        return int(f) + 1
    return int(f)


@njit(cache=True)
def _weighted_rms(w):
    """RMS of the bin centres 0.5, 1.5, … weighted by w (ROOT's GetRMS from bin contents:
    0 when the weights sum to 0, negative variance clipped to 0)."""
    sw = swx = swx2 = 0.0
    for i in range(w.shape[0]):
        c = i + 0.5
        sw += w[i]
        swx += w[i] * c
        swx2 += w[i] * c * c
    if sw == 0.0:
        return 0.0
    mean = swx / sw
    return math.sqrt(max(swx2 / sw - mean * mean, 0.0))


@njit(cache=True)
def _overwrite_hist_rms(u, v, z, length, width):
    """RMS of the x and y projections of production's unit-bin histogram over
    [0, int(length)+2) × [0, int(width)+2) where each hit SETS its rounded bin to z."""
    nx, ny = int(length) + 2, int(width) + 2
    h = np.zeros((nx, ny), np.float32)
    for i in range(u.shape[0]):
        h[_round_half_even(u[i]), _round_half_even(v[i])] = z[i]
    wx = np.zeros(nx)
    wy = np.zeros(ny)
    for i in range(nx):
        for j in range(ny):
            wx[i] += h[i, j]
            wy[j] += h[i, j]
    return _weighted_rms(wx), _weighted_rms(wy)


@njit(cache=True)
def _profile(r, z, min_entries):
    """Production's profile along one rotated coordinate r.

    Edges (dynamicProfileBins_v2): over integer positions t = trunc(r) from min to max−1,
    hit counts accumulate until they reach min_entries; the position where that is seen
    becomes an edge (its own count is skipped); the last edge is max. Edges are shifted by
    −trunc(min r) and the profile is filled at r − min r (hits beyond the last edge fall in
    the overflow). Returns (edges, contents, sum of squared weights, mean, rms), mean/rms
    as ROOT's fill statistics (in-range entries at their exact positions).
    """
    t = np.empty(r.shape[0], np.int64)
    for i in range(r.shape[0]):
        t[i] = int(r[i])  # truncation toward zero, as numpy's astype(int)
    tmin, tmax = t.min(), t.max()
    counts = np.zeros(tmax - tmin + 1, np.int64)
    for i in range(t.shape[0]):
        counts[t[i] - tmin] += 1
    edge_list = [tmin]
    acc = 0
    for pos in range(tmin, tmax):
        if acc < min_entries:
            acc += counts[pos - tmin]
        else:
            edge_list.append(pos)
            acc = 0
    edge_list.append(tmax)
    edges = np.empty(len(edge_list))
    for k in range(len(edge_list)):
        edges[k] = edge_list[k] - tmin
    nb = edges.shape[0] - 1
    content = np.zeros(nb)
    err2 = np.zeros(nb)
    # integer edges: the bin of u is the bin of floor(u)
    bin_of = np.empty(tmax - tmin, np.int64)
    for k in range(nb):
        bin_of[int(edges[k]) : int(edges[k + 1])] = k
    rmin = r.min()
    sw = swx = swx2 = 0.0
    for i in range(r.shape[0]):
        u = r[i] - rmin
        if u >= edges[nb]:
            continue
        b = bin_of[int(u)]
        content[b] += z[i]
        err2[b] += z[i] * z[i]
        sw += z[i]
        swx += z[i] * u
        swx2 += z[i] * u * u
    mean = rms = 0.0
    if sw != 0.0:
        mean = swx / sw
        rms = math.sqrt(max(swx2 / sw - mean * mean, 0.0))
    return edges, content, err2, mean, rms


@njit(cache=True)
def _gauss_chi2(xc, y, wt, a, m, s):
    chi = 0.0
    for i in range(xc.shape[0]):
        d = y[i] - a * math.exp(-0.5 * ((xc[i] - m) / s) ** 2)
        chi += d * d * wt[i]
    return chi


@njit(cache=True)
def _best_amplitude(xc, y, wt, m, s):
    """The amplitude minimising χ² for a Gaussian of mean m, sigma s (χ² is quadratic in it)."""
    syg = sgg = 0.0
    for i in range(xc.shape[0]):
        g = math.exp(-0.5 * ((xc[i] - m) / s) ** 2)
        syg += y[i] * g * wt[i]
        sgg += g * g * wt[i]
    return syg / sgg if sgg > 0 else 0.0


@njit(cache=True)
def _gauss_fit(edges, content, err2, mean, rms, o):
    """Production's profile fit: χ² of A·exp(−(x−m)²/2s²) on the bins whose centre lies in
    mean ± 5·rms (errors √Σz², empty bins skipped), m ∈ [mean−rms, mean+rms]. Production
    also sets s ∈ [0.5, 1.5]·rms, but ROOT's initialisation of its predefined "gaus"
    (no fit option "B") replaces that by s ∈ [0, 10·rms'], rms' the RMS of the fitted bin
    centres weighted by their contents (checked against ROOT 6). Seed: the best point of
    a 5×5 grid over [mean ± rms] × [0.5, 1.5]·rms (amplitude solved exactly); then
    Levenberg–Marquardt steps projected onto the limits. Writes amp, mean, sigma, χ²,
    status into o[0:5]."""
    if content.sum() == 0.0:
        o[0], o[1], o[2], o[3], o[4] = 0.0, 0.0, 0.0, 999.0, FIT_FAILED
        return
    lo, hi = mean - 5 * rms, mean + 5 * rms
    centres = 0.5 * (edges[1:] + edges[:-1])
    use = (centres >= lo) & (centres <= hi) & (err2 > 0)
    if rms <= 0.0 or use.sum() == 0:
        o[0], o[1], o[2], o[3], o[4] = MISSING, MISSING, MISSING, 999.0, FIT_FAILED
        return
    xc, y, wt = centres[use], content[use], 1.0 / err2[use]
    m_lo, m_hi, s_lo, s_hi = mean - rms, mean + rms, 0.5 * rms, 1.5 * rms
    a, m, s, chi = 0.0, mean, rms, np.inf
    for i in range(5):
        for j in range(5):
            mi, sj = m_lo + i * (m_hi - m_lo) / 4, s_lo + j * (s_hi - s_lo) / 4
            ai = _best_amplitude(xc, y, wt, mi, sj)
            c = _gauss_chi2(xc, y, wt, ai, mi, sj)
            if c < chi:
                a, m, s, chi = ai, mi, sj, c
    tot = y.sum()
    m_fit = (y * xc).sum() / tot if tot > 0 else mean
    var_fit = (y * xc * xc).sum() / tot - m_fit * m_fit if tot > 0 else 0.0
    rms_fit = math.sqrt(var_fit) if var_fit > 0 else (edges[-1] - edges[0]) / 4
    m_lo, m_hi, s_lo, s_hi = mean - rms, mean + rms, 1e-9 * rms, 10.0 * rms_fit
    lam = 1e-3
    jtj = np.empty((3, 3))
    jtr = np.empty(3)
    for _ in range(200):
        jtj[:] = 0.0
        jtr[:] = 0.0
        for i in range(xc.shape[0]):
            t = (xc[i] - m) / s
            g = math.exp(-0.5 * t * t)
            jac = (g, a * g * t / s, a * g * t * t / s)
            r = y[i] - a * g
            for p in range(3):
                jtr[p] += jac[p] * r * wt[i]
                for q in range(3):
                    jtj[p, q] += jac[p] * jac[q] * wt[i]
        # a parameter held at its limit by the gradient stays out of the step
        for p, v, v_lo, v_hi in ((1, m, m_lo, m_hi), (2, s, s_lo, s_hi)):
            if (v <= v_lo and jtr[p] < 0) or (v >= v_hi and jtr[p] > 0):
                jtj[p, :] = 0.0
                jtj[:, p] = 0.0
                jtj[p, p] = 1.0
                jtr[p] = 0.0
        moved = False
        for _ in range(12):
            h = jtj.copy()
            for p in range(3):
                h[p, p] *= 1.0 + lam
            d, ok = solve3(h, jtr)
            lam *= 10.0
            if not ok:
                continue
            na = a + d[0]
            nm = min(max(m + d[1], m_lo), m_hi)
            ns = min(max(s + d[2], s_lo), s_hi)
            nc = _gauss_chi2(xc, y, wt, na, nm, ns)
            if nc < chi:
                moved = chi - nc > 1e-9 * chi
                a, m, s, chi = na, nm, ns, nc
                lam = max(lam / 100.0, 1e-12)
                break
        if not moved:
            break
    o[0], o[1], o[2], o[3], o[4] = a, m, s, chi, FIT_OK


@njit(cache=True)
def _find_peaks(y, height, distance, prominence, width):
    """scipy.signal.find_peaks(y, height, distance, prominence, width) (rel_height 0.5,
    no wlen): rows (index, height, prominence, left_ips, right_ips), by position."""
    n = y.shape[0]
    cand = []
    i = 1
    while i < n - 1:  # local maxima, plateaus reduced to their middle (left-biased)
        if y[i - 1] < y[i]:
            ahead = i + 1
            while ahead < n - 1 and y[ahead] == y[i]:
                ahead += 1
            if y[ahead] < y[i]:
                cand.append((i + ahead - 1) // 2)
                i = ahead
        i += 1
    peaks = np.empty(len(cand), np.int64)
    npk = 0
    for p in cand:
        if y[p] >= height:
            peaks[npk] = p
            npk += 1
    peaks = peaks[:npk]
    # distance: keep the highest, drop neighbours closer than `distance`
    keep = np.ones(peaks.shape[0], np.bool_)
    order = np.argsort(y[peaks], kind="mergesort")
    for q in range(order.shape[0] - 1, -1, -1):
        j = order[q]
        if not keep[j]:
            continue
        k = j - 1
        while k >= 0 and peaks[j] - peaks[k] < distance:
            keep[k] = False
            k -= 1
        k = j + 1
        while k < peaks.shape[0] and peaks[k] - peaks[j] < distance:
            keep[k] = False
            k += 1
    peaks = peaks[keep]
    rows = np.empty((peaks.shape[0], 5))
    count = 0
    for p in peaks:
        lmin, lbase = y[p], p
        i = p
        while i >= 0 and y[i] <= y[p]:
            if y[i] < lmin:
                lmin, lbase = y[i], i
            i -= 1
        rmin, rbase = y[p], p
        i = p
        while i <= n - 1 and y[i] <= y[p]:
            if y[i] < rmin:
                rmin, rbase = y[i], i
            i += 1
        prom = y[p] - max(lmin, rmin)
        if prom < prominence:
            continue
        ref = y[p] - 0.5 * prom
        i = p
        while lbase < i and ref < y[i]:
            i -= 1
        left = float(i)
        if y[i] < ref:
            left += (ref - y[i]) / (y[i + 1] - y[i])
        i = p
        while i < rbase and ref < y[i]:
            i += 1
        right = float(i)
        if y[i] < ref:
            right -= (ref - y[i]) / (y[i - 1] - y[i])
        if right - left < width:
            continue
        rows[count, 0], rows[count, 1], rows[count, 2] = p, y[p], prom
        rows[count, 3], rows[count, 4] = left, right
        count += 1
    return rows[:count]


@njit(cache=True)
def _interp(centres, ip):
    """Position of a fractional bin index on the (variable) bin centres."""
    k = min(int(ip), centres.shape[0] - 1)
    if k + 1 >= centres.shape[0]:
        return centres[k]
    return centres[k] + (ip - k) * (centres[k + 1] - centres[k])
