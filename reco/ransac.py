"""Small seeded RANSAC fits (straight line, polynomial band) compiled with numba.

The generator is a splitmix64 stream held in a one-element uint64 array, so a fit is
reproducible from the seed alone and independent of any global random state. Models are
found from minimal samples and then refined by least squares on their inliers (LO-RANSAC),
so a handful of trials sized by the wanted inlier fraction is enough.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def rng_state(seed: int) -> np.ndarray:
    """Generator state for `seed` (pass the same array along to continue the stream)."""
    return np.array([np.uint64(seed & 0xFFFFFFFFFFFFFFFF)], dtype=np.uint64)


def trials_for(inlier_fraction: float, sample_size: int, confidence: float = 0.999) -> int:
    """RANSAC trials needed to draw one all-inlier minimal sample with `confidence`."""
    good = inlier_fraction**sample_size
    if good >= 1.0:
        return 1
    return max(1, math.ceil(math.log(1.0 - confidence) / math.log(1.0 - good)))


@njit(cache=True)
def _next(state):
    state[0] += _GOLDEN
    z = state[0]
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@njit(cache=True)
def randint(state, n):
    """Uniform integer in [0, n)."""
    return np.int64(_next(state) % np.uint64(n))


@njit(cache=True)
def solve3(a, b):
    """Solve the 3×3 system a·x = b by Cramer's rule; (x, False) when near-singular.

    Written out instead of np.linalg so the kernels compile quickly and skip LAPACK calls.
    """
    c00 = a[1, 1] * a[2, 2] - a[1, 2] * a[2, 1]
    c01 = a[1, 2] * a[2, 0] - a[1, 0] * a[2, 2]
    c02 = a[1, 0] * a[2, 1] - a[1, 1] * a[2, 0]
    det = a[0, 0] * c00 + a[0, 1] * c01 + a[0, 2] * c02
    x = np.zeros(3)
    scale = abs(a[0, 0] * a[1, 1] * a[2, 2]) + 1e-300
    if abs(det) < 1e-12 * scale:
        return x, False
    c10 = a[0, 2] * a[2, 1] - a[0, 1] * a[2, 2]
    c11 = a[0, 0] * a[2, 2] - a[0, 2] * a[2, 0]
    c12 = a[0, 1] * a[2, 0] - a[0, 0] * a[2, 1]
    c20 = a[0, 1] * a[1, 2] - a[0, 2] * a[1, 1]
    c21 = a[0, 2] * a[1, 0] - a[0, 0] * a[1, 2]
    c22 = a[0, 0] * a[1, 1] - a[0, 1] * a[1, 0]
    x[0] = (c00 * b[0] + c10 * b[1] + c20 * b[2]) / det
    x[1] = (c01 * b[0] + c11 * b[1] + c21 * b[2]) / det
    x[2] = (c02 * b[0] + c12 * b[1] + c22 * b[2]) / det
    return x, True


@njit(cache=True)
def polyfit_ls(x, y, mask, order):
    """Least-squares polynomial (order 1 or 2) on the masked points, centred for stability.

    Returns coefficients c (c0 + c1·x + c2·x²) and False when the system is singular.
    """
    c = np.zeros(3)
    m = 0
    xm = 0.0
    for i in range(x.shape[0]):
        if mask[i]:
            xm += x[i]
            m += 1
    if m <= order:
        return c, False
    xm /= m
    s = np.zeros(5)
    t = np.zeros(3)
    for i in range(x.shape[0]):
        if mask[i]:
            u = x[i] - xm
            p = 1.0
            for k in range(5):
                s[k] += p
                if k < 3:
                    t[k] += p * y[i]
                p *= u
    if order == 1:
        det = s[0] * s[2] - s[1] * s[1]
        if abs(det) < 1e-9 * max(1.0, s[0] * s[2]):
            return c, False
        b1 = (s[0] * t[1] - s[1] * t[0]) / det
        b0 = (t[0] - b1 * s[1]) / s[0]
        c[0] = b0 - b1 * xm
        c[1] = b1
        return c, True
    a = np.empty((3, 3))
    for r in range(3):
        for k in range(3):
            a[r, k] = s[r + k]
    b, ok = solve3(a, t)
    if not ok:
        return c, False
    # Expand b0 + b1 (x - xm) + b2 (x - xm)^2 back to powers of x.
    c[0] = b[0] - b[1] * xm + b[2] * xm * xm
    c[1] = b[1] - 2.0 * b[2] * xm
    c[2] = b[2]
    return c, True


@njit(cache=True)
def _through(x, y, idx, order):
    """Exact polynomial through order+1 sample points; False when degenerate."""
    c = np.zeros(3)
    if order == 1:
        x0, y0, x1, y1 = x[idx[0]], y[idx[0]], x[idx[1]], y[idx[1]]
        if x0 == x1:
            return c, False
        c[1] = (y1 - y0) / (x1 - x0)
        c[0] = y0 - c[1] * x0
        return c, True
    x0, x1, x2 = x[idx[0]], x[idx[1]], x[idx[2]]
    if x0 == x1 or x0 == x2 or x1 == x2:  # noqa: SIM109 (numba-friendly)
        return c, False
    y0, y1, y2 = y[idx[0]], y[idx[1]], y[idx[2]]
    d01 = (y1 - y0) / (x1 - x0)
    d12 = (y2 - y1) / (x2 - x1)
    c[2] = (d12 - d01) / (x2 - x0)
    c[1] = d01 - c[2] * (x0 + x1)
    c[0] = y0 - c[1] * x0 - c[2] * x0 * x0
    return c, True


@njit(cache=True)
def band_inliers(x, y, c, thickness, out):
    """|y − f(x)| < thickness·sqrt(1 + f′(x)²) (perpendicular distance ≲ thickness)."""
    n = 0
    for i in range(x.shape[0]):
        f = c[0] + c[1] * x[i] + c[2] * x[i] * x[i]
        d = c[1] + 2.0 * c[2] * x[i]
        ok = abs(y[i] - f) < thickness * math.sqrt(1.0 + d * d)
        out[i] = ok
        if ok:
            n += 1
    return n


@njit(cache=True)
def _vertical_inliers(x, y, c, threshold, out):
    n = 0
    for i in range(x.shape[0]):
        ok = abs(y[i] - c[0] - c[1] * x[i]) <= threshold
        out[i] = ok
        if ok:
            n += 1
    return n


@njit(cache=True)
def _sample(state, n, k, idx):
    for a in range(k):
        while True:
            v = randint(state, n)
            dup = False
            for b in range(a):
                if idx[b] == v:
                    dup = True
            if not dup:
                idx[a] = v
                break


@njit(cache=True)
def line_accuracy(x, y, threshold, trials, state):
    """Best inlier fraction of a line y = a + b·x with vertical residual <= threshold."""
    n = x.shape[0]
    if n < 2:
        return 1.0
    idx = np.empty(2, dtype=np.int64)
    cur = np.empty(n, dtype=np.bool_)
    best_mask = np.zeros(n, dtype=np.bool_)
    best = 0
    for _ in range(trials):
        _sample(state, n, 2, idx)
        c, ok = _through(x, y, idx, 1)
        if not ok:
            continue
        m = _vertical_inliers(x, y, c, threshold, cur)
        if m > best:
            best = m
            best_mask[:] = cur
    # Local optimisation: least squares on the inliers, keep it if it scores better.
    for _ in range(2):
        if best < 2:
            break
        c, ok = polyfit_ls(x, y, best_mask, 1)
        if not ok:
            break
        m = _vertical_inliers(x, y, c, threshold, cur)
        if m <= best:
            break
        best = m
        best_mask[:] = cur
    return best / n


@njit(cache=True)
def poly_band(x, y, order, thickness, min_fraction, trials, state):
    """RANSAC polynomial whose band of half-width `thickness` holds > min_fraction of points.

    Returns (coefficients c0..c2, inlier count, found).
    """
    n = x.shape[0]
    coef = np.zeros(3)
    if n <= order:
        return coef, 0, False
    idx = np.empty(order + 1, dtype=np.int64)
    cur = np.empty(n, dtype=np.bool_)
    best_mask = np.zeros(n, dtype=np.bool_)
    best = 0
    for _ in range(trials):
        _sample(state, n, order + 1, idx)
        c, ok = _through(x, y, idx, order)
        if not ok:
            continue
        m = band_inliers(x, y, c, thickness, cur)
        if m > best:
            best = m
            best_mask[:] = cur
            coef[:] = c
    for _ in range(3):
        if best <= order:
            break
        c, ok = polyfit_ls(x, y, best_mask, order)
        if not ok:
            break
        m = band_inliers(x, y, c, thickness, cur)
        if m < best:
            break
        best_mask[:] = cur
        coef[:] = c
        if m == best:
            break
        best = m
    return coef, best, best > min_fraction * n
