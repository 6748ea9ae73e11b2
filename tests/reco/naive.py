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
