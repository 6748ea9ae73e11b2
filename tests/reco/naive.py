"""A plain numpy/scipy version of the per-picture chain (steps 1–8).

It is the independent reference the numba kernels are tested against, and the naive
baseline of the reco benchmark (there followed by sklearn's DBSCAN).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def zero_suppressed(frame, mean, sigma, nsigma, cimax, acceptance):
    """(z, zs) in working-picture orientation (picture = frame[:, ::-1])."""
    raw = frame[:, ::-1]
    pic = np.where(raw >= cimax, 0, raw).astype(np.float32)
    z = pic - mean[:, ::-1]
    zs = np.where(z > nsigma * sigma[:, ::-1], z, np.float32(0)).astype(np.float32)
    x_min, x_max, y_min, y_max = acceptance
    zs[:x_min] = 0
    zs[x_max:] = 0
    zs[:, :y_min] = 0
    zs[:, y_max:] = 0
    return z, zs


def rebin(img, factor):
    h, w = img.shape[0] // factor, img.shape[1] // factor
    return img[: h * factor, : w * factor].reshape(h, factor, w, factor).mean(axis=(1, 3))


def neighbour_filter(img, border=2, max_deviation=10.0, min_avg=1.2, min_active=3):
    img = img.astype(np.float64).copy()
    img[:border] = 0
    img[-border:] = 0
    img[:, :border] = 0
    img[:, -border:] = 0
    pad = np.pad(img, 1)
    n0, n1 = img.shape
    shifts = [
        pad[1 + di : 1 + di + n0, 1 + dj : 1 + dj + n1] for di in (-1, 0, 1) for dj in (-1, 0, 1)
    ]
    m = (sum(shifts) - img) / 8.0
    active = sum((s != 0).astype(int) for s in shifts)
    v = np.where(np.abs(img - m) > max_deviation, m, img)
    v[m < min_avg] = 0
    v[active < min_active] = 0
    v[:border] = 0
    v[-border:] = 0
    v[:, :border] = 0
    v[:, -border:] = 0
    return v


def points_and_weights(
    frame,
    mean,
    sigma,
    nsigma=0.6,
    cimax=5000,
    acceptance=(304, 2054, 0, 1 << 20),
    factor=4,
    min_avg=1.2,
):
    """Steps 2–8: (points [x, y], weights, zs picture, rebinned zs)."""
    _, zs = zero_suppressed(frame, mean, sigma, nsigma, cimax, acceptance)
    med = ndimage.median_filter(zs, size=2)
    rb = rebin(zs, factor)
    filtered = neighbour_filter(rebin(med, factor), min_avg=min_avg)
    points = np.argwhere(np.round(filtered) != 0).astype(np.int32)
    weights = np.maximum(rb[points[:, 0], points[:, 1]].astype(np.int64), 1)
    return points, weights, zs, rb


# ---------------------------------------------------------------------------------------
# Production's per-cluster variables (Reco_v2.1.0 clusterTools / profiling / utilities),
# written the slow, obvious way: Python loops over hits, histograms as ROOT fills them,
# scipy's find_peaks, scipy's bounded least squares for the Gaussian fits.


def production_hits(z, zs, macro, rebin):
    """(x, y, z, zs>0) of every full-resolution pixel under the macro-pixels, in
    production's order (np.unique of the macro-pixels, then row by row beneath each)."""
    rows = []
    for mx, my in np.unique(np.asarray(macro), axis=0):
        for x in range(mx * rebin, (mx + 1) * rebin):
            for y in range(my * rebin, (my + 1) * rebin):
                rows.append((x, y, float(z[x, y]), float(zs[x, y]) > 0))
    return np.array(rows, dtype=float)


def _dynamic_edges(values, rel_error):
    """utilities.dynamicProfileBins_v2."""
    min_pixels = max(1, 1 / rel_error / rel_error)
    t = [int(v) for v in values]
    lo, hi = min(t), max(t)
    edges, acc = [lo], 0
    for pos in range(lo, hi):
        if acc < min_pixels:
            acc += t.count(pos)
        else:
            edges.append(pos)
            acc = 0
    edges.append(hi)
    return edges


class _Hist1D:
    """What ROOT's TH1F keeps after Fill(x, w): contents, Σw² per bin, fill statistics of
    in-range entries."""

    def __init__(self, edges):
        self.edges = np.asarray(edges, float)
        n = len(edges) - 1
        self.content, self.sumw2 = np.zeros(n), np.zeros(n)
        self.sw = self.swx = self.swx2 = 0.0

    def fill(self, x, w):
        if x < self.edges[0] or x >= self.edges[-1]:
            return
        b = int(np.searchsorted(self.edges, x, side="right")) - 1
        self.content[b] += w
        self.sumw2[b] += w * w
        self.sw += w
        self.swx += w * x
        self.swx2 += w * x * x

    def mean(self):
        return self.swx / self.sw if self.sw else 0.0

    def rms(self):
        if not self.sw:
            return 0.0
        return float(np.sqrt(max(self.swx2 / self.sw - self.mean() ** 2, 0.0)))


def _bin_rms(weights):
    c = np.arange(len(weights)) + 0.5
    sw = weights.sum()
    if sw == 0:
        return 0.0
    m = (weights * c).sum() / sw
    return float(np.sqrt(max((weights * c * c).sum() / sw - m * m, 0.0)))


def _fit(h):
    """Clusters.fitProfile as ROOT runs it: gaus on the bins centred in mean ± 5 rms, mean
    within ± rms; sigma within [0, 10·rms'] (ROOT's InitGaus replaces the [0.5, 1.5]·rms
    limits of a predefined gaus without option B; rms' from the fitted bins).
    Returns (amp, mean, sigma, chi2)."""
    from scipy.optimize import least_squares

    mean, rms = h.mean(), h.rms()
    if h.content.sum() == 0:
        return 0.0, 0.0, 0.0, 999.0
    centres = 0.5 * (h.edges[1:] + h.edges[:-1])
    use = (centres >= mean - 5 * rms) & (centres <= mean + 5 * rms) & (h.sumw2 > 0)
    x, y, e = centres[use], h.content[use], np.sqrt(h.sumw2[use])
    m_fit = np.average(x, weights=y)
    rms_fit = np.sqrt(np.average(x * x, weights=y) - m_fit**2)

    def resid(p):
        return (y - p[0] * np.exp(-0.5 * ((x - p[1]) / p[2]) ** 2)) / e

    best = None
    for m0 in (mean - 0.5 * rms, mean, mean + 0.5 * rms):
        for s0 in (0.6 * rms, rms, 1.4 * rms):
            r = least_squares(
                resid, [max(y.max(), 1e-3), m0, s0],
                bounds=([-np.inf, mean - rms, 1e-9 * rms], [np.inf, mean + rms, 10 * rms_fit]),
                xtol=1e-12, ftol=1e-12, gtol=1e-12,
            )  # fmt: skip
            if best is None or r.cost < best.cost:
                best = r
    return (*(float(v) for v in best.x), float(2 * best.cost))


def _main_peak(h):
    """PeakFinder on the profile; the 'main' peak is the one at the largest position."""
    from scipy.signal import find_peaks

    centres = 0.5 * (h.edges[1:] + h.edges[:-1])
    peaks, prop = find_peaks(h.content, height=3, distance=6, prominence=2, width=2)
    if not len(peaks):
        return -999.0, -999.0, -999.0, -999.0
    k = int(np.argmax(centres[peaks]))
    return (
        float(prop["peak_heights"][k]),
        float(prop["prominences"][k]),
        float(centres[peaks[k]]),
        float(prop["widths"][k]),
    )


def production_cluster(z, zs, macro, rebin=4):
    """Production's variables of one cluster from its macro-pixels."""
    hits = production_hits(z, zs, macro, rebin)
    x, y, v = hits[:, 0], hits[:, 1], hits[:, 2]
    xy = np.unique(np.asarray(macro), axis=0)
    e, d2, omega, alpha, sigma0, a0 = 1.60217662e-7, 0.015625, 0.00018, 0.08, 2.5, 0.1855
    a = a0 * e / (d2 * alpha * omega)
    b = 1.0 - 2 * a0 * sigma0
    c = a0 * sigma0 * sigma0 * (d2 * alpha * omega) / e
    out = {
        "sc_size": len(hits),
        "sc_nhits": int(hits[:, 3].sum()),
        "sc_integral": v.sum(),
        "sc_corrintegral": sum(a * z * z + b * z + c for z in v),
        "sc_rms": np.std(v),
    }
    if v.sum() >= 10:
        w = np.maximum(v, 0)
        out.update(
            sc_xmean=np.average(x, weights=w), sc_ymean=np.average(y, weights=w),
            sc_xmin=x.min(), sc_xmax=x.max(), sc_ymin=y.min(), sc_ymax=y.max(),
        )  # fmt: skip
    vals, vecs = np.linalg.eig(np.cov(xy.T.astype(float)))
    out["sc_theta"] = np.degrees(np.arctan2(*vecs[:, 0][::-1]))
    cos, sin = vecs[:, np.argmax(vals)]
    ox, oy = xy[:, 0].mean(), xy[:, 1].mean()
    rx = [ox + cos * (a - ox) + sin * (b - oy) for a, b in zip(x, y, strict=True)]
    ry = [oy - sin * (a - ox) + cos * (b - oy) for a, b in zip(x, y, strict=True)]
    rxmin, rymin = min(rx), min(ry)
    length, width = max(rx) - rxmin, max(ry) - rymin
    out["sc_length"], out["sc_width"] = length, width
    grid = np.zeros((int(length) + 2, int(width) + 2))
    for a, b, c in zip(rx, ry, v, strict=True):
        grid[int(np.round(a - rxmin)), int(np.round(b - rymin))] = c
    out["sc_longrms"], out["sc_latrms"] = _bin_rms(grid.sum(axis=1)), _bin_rms(grid.sum(axis=0))
    for name, r, rmin, rel in (("l", rx, rxmin, 0.2), ("t", ry, rymin, 0.3)):
        h = _Hist1D([e - int(rmin) for e in _dynamic_edges(r, rel)])
        for a, c in zip(r, v, strict=True):
            h.fill(a - rmin, c)
        out[f"sc_{name}fullrms"] = h.rms()
        amp, mean, sigma, chi2 = _fit(h)
        out[f"sc_{name}gaussamp"], out[f"sc_{name}gaussmean"] = amp, mean
        out[f"sc_{name}gausssigma"] = sigma
        out[f"sc_{name}chi2"] = chi2
        peak = _main_peak(h)
        out[f"sc_{name}p0fwhm"] = peak[3]
        if name == "l":
            out["sc_lp0amplitude"], out["sc_lp0prominence"], out["sc_lp0mean"] = peak[:3]
    return out
