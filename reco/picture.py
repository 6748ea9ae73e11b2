"""The per-picture chain of docs/reconstruction.md steps 1–8 as numba kernels.

* `fused_pass` walks the raw frame once, row by row, and does spark sum, saturation
  guard (cimax), pedestal subtraction, zero suppression, acceptance, the 2×2 median
  filter of the full-resolution ZS picture and both ×4 block means (ZS picture and its
  median-filtered copy) in that single pass. The median needs the previous ZS row only,
  so two row buffers replace every full-resolution intermediate image. Rows outside
  the acceptance are only summed (spark veto).
* `neighbour_filter` + `select_points` work on the 576² macro-pixel pictures.
* Features need z (pedestal-subtracted, not zero-suppressed) at their hits only:
  `PictureZ` / `PictureZS` evaluate it there, from the frame, on demand.

Orientation: production's working picture is ``frame[:, ::-1]`` (x = frame row,
y = width − 1 − frame column). The kernels read the frame with that index arithmetic,
so no flipped copy is ever made; pedestal maps stay in frame orientation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numba as nb
import numpy as np


@nb.njit(cache=True, nogil=True, fastmath=False)
def _median4_upper(a, b, c, d):
    """Third smallest of four values: what scipy's ``median_filter(size=2)`` returns."""
    lo1 = min(a, b)
    hi1 = max(a, b)
    lo2 = min(c, d)
    hi2 = max(c, d)
    return max(min(hi1, hi2), max(lo1, lo2))


@nb.njit(cache=True, nogil=True)
def _raw_row_sum(frame, x):
    total = np.int64(0)
    for c in range(frame.shape[1]):
        total += frame[x, c]
    return total


@nb.njit(cache=True, nogil=True)
def _subtract_row(frame, ped_mean, threshold, cimax, x, c_lo, c_hi, row):
    """ZS values of frame row x (frame orientation) for columns [c_lo, c_hi), 0 elsewhere.

    Written branch-free over contiguous forward arrays so LLVM vectorises it.
    Returns the raw sum of the row.
    """
    w = frame.shape[1]
    total = np.int64(0)
    for c in range(w):
        raw = frame[x, c]
        total += raw
        v = np.float32(raw) if raw < cimax else np.float32(0.0)
        zv = v - ped_mean[x, c]
        row[c] = zv if zv > threshold[x, c] else np.float32(0.0)
    for c in range(0, c_lo):
        row[c] = 0.0
    for c in range(c_hi, w):
        row[c] = 0.0
    return total


@nb.njit(cache=True, nogil=True)
def _median_rebin_row(prev, cur, w, bx, nby, rebin, rb_out, rbm_out):
    """Add one picture row to the block sums: ZS values and their 2×2 upper median.

    ``prev``/``cur`` are ZS rows in frame orientation; picture column y is frame column
    w − 1 − y, and the median window is picture columns y − 1..y (reflected at y = 0).
    Returns (sum, sum of squares) of the row's ZS values (whole row).
    """
    rs = 0.0
    rss = 0.0
    c0 = w - 1
    prev_c = cur[c0]
    prev_p = prev[c0]
    for by in range(nby):
        acc = np.float32(0.0)
        accm = np.float32(0.0)
        for k in range(rebin):
            c = c0 - (by * rebin + k)
            cv = cur[c]
            pv = prev[c]
            acc += cv
            rss += cv * cv
            accm += _median4_upper(prev_p, pv, prev_c, cv)
            prev_c = cv
            prev_p = pv
        rb_out[bx, by] += acc
        rbm_out[bx, by] += accm
        rs += acc
    for y in range(nby * rebin, w):  # columns beyond the last whole block
        cv = cur[c0 - y]
        rs += cv
        rss += cv * cv
    return rs, rss


@nb.njit(cache=True, nogil=True)
def fused_pass(
    frame, ped_mean, threshold, cimax, x_lo, x_hi, y_lo, y_hi, rebin, rb_out, rbm_out, rows
):
    """One pass over a (H, W) uint16 frame; returns (raw_sum, zs_sum, zs_sumsq).

    ``threshold`` = nsigma·sigma (frame orientation, float32). Acceptance is the
    half-open rectangle [x_lo, x_hi) × [y_lo, y_hi) in working-picture coordinates
    (already clipped to the picture); rows outside it are only summed (spark veto).
    Outputs ``rb_out`` / ``rbm_out`` (H//rebin, W//rebin) float32: block means of the
    ZS picture and of its 2×2 median. ``rows`` is a (2, W) float32 scratch buffer.
    Nothing full-resolution is written: features evaluate z at their hits only
    (`PictureZ`).
    """
    h, w = frame.shape
    nbx = rb_out.shape[0]
    nby = rb_out.shape[1]
    rb_out[:, :] = 0.0
    rbm_out[:, :] = 0.0
    c_lo = w - y_hi  # picture columns [y_lo, y_hi) = frame columns [w - y_hi, w - y_lo)
    c_hi = w - y_lo
    raw_sum = np.int64(0)
    zs_sum = 0.0
    zs_sumsq = 0.0
    cur = rows[0]
    prev = rows[1]
    prev_nonzero = False
    for x in range(h):
        accepted = x >= x_lo and x < x_hi
        if not accepted:
            raw_sum += _raw_row_sum(frame, x)
            if not prev_nonzero:
                continue
            cur[:] = 0.0  # the row after the acceptance still gets median light
        else:
            raw_sum += _subtract_row(frame, ped_mean, threshold, cimax, x, c_lo, c_hi, cur)
            if x == 0:
                prev[:] = cur  # the median window reflects at the top edge
            elif not prev_nonzero:
                prev[:] = 0.0
        bx = x // rebin
        if bx < nbx:
            rs, rss = _median_rebin_row(prev, cur, w, bx, nby, rebin, rb_out, rbm_out)
        else:
            rs = 0.0
            rss = 0.0
            for c in range(w):
                rs += cur[c]
                rss += cur[c] * cur[c]
        zs_sum += rs
        zs_sumsq += rss
        prev_nonzero = accepted
        cur, prev = prev, cur
    inv = np.float32(1.0 / (rebin * rebin))
    for i in range(nbx):
        for j in range(nby):
            rb_out[i, j] *= inv
            rbm_out[i, j] *= inv
    return raw_sum, zs_sum, zs_sumsq


@nb.njit(cache=True, nogil=True)
def neighbour_filter(img, border, max_deviation, min_neighbors_average, min_active, out):
    """Step 7 on the macro-pixel picture (see docs/reconstruction.md); writes ``out``.

    The border of ``border`` macro-pixels is zeroed first; every interior value is then
    derived from the border-zeroed input (never from already filtered neighbours).
    3×3 sums and non-zero counts are separable: horizontal triples, then vertical.
    """
    n0, n1 = img.shape
    out[:, :] = 0.0
    if n0 <= 2 * border or n1 <= 2 * border:
        return
    # padded, border-zeroed copy: pad[i + 1, j + 1] = img[i, j] inside the interior
    pad = np.zeros((n0 + 2, n1 + 2), np.float32)
    for i in range(border, n0 - border):
        for j in range(border, n1 - border):
            pad[i + 1, j + 1] = img[i, j]
    hsum = np.empty((n0 + 2, n1), np.float32)
    hcnt = np.empty((n0 + 2, n1), np.int32)
    for i in range(n0 + 2):
        for j in range(n1):
            a = pad[i, j]
            b = pad[i, j + 1]
            c = pad[i, j + 2]
            hsum[i, j] = a + b + c
            hcnt[i, j] = np.int32(a != 0) + np.int32(b != 0) + np.int32(c != 0)
    for i in range(border, n0 - border):
        for j in range(border, n1 - border):
            active = hcnt[i, j] + hcnt[i + 1, j] + hcnt[i + 2, j]
            if active == 0:
                continue
            v = pad[i + 1, j + 1]
            m = (hsum[i, j] + hsum[i + 1, j] + hsum[i + 2, j] - v) / np.float32(8.0)
            if abs(v - m) > max_deviation:
                v = m
            if m < min_neighbors_average or active < min_active:
                v = 0.0
            out[i, j] = v


@nb.njit(cache=True, nogil=True)
def select_points(filtered, rb):
    """Step 8: macro-pixels with round(v) ≠ 0, in row-major order, and their weights.

    Returns (points (n, 2) int32 [x, y], weights (n,) int64 = max(1, int(rb))).
    round() is half-to-even as numpy's, so round(v) ≠ 0 ⇔ |v| > 0.5.
    """
    n0, n1 = filtered.shape
    count = 0
    for i in range(n0):
        for j in range(n1):
            if abs(filtered[i, j]) > 0.5:
                count += 1
    points = np.empty((count, 2), np.int32)
    weights = np.empty(count, np.int64)
    k = 0
    for i in range(n0):
        for j in range(n1):
            if abs(filtered[i, j]) > 0.5:
                points[k, 0] = i
                points[k, 1] = j
                wv = np.int64(rb[i, j])
                weights[k] = wv if wv >= 1 else 1
                k += 1
    return points, weights


@dataclass
class Workspace:
    """Buffers reused from picture to picture (one per worker, never shared)."""

    rb: np.ndarray
    rbm: np.ndarray
    filtered: np.ndarray
    rows: np.ndarray

    @classmethod
    def for_shape(cls, shape: tuple[int, int], rebin: int) -> Workspace:
        h, w = shape
        macro = (h // rebin, w // rebin)
        return cls(
            rb=np.empty(macro, np.float32),
            rbm=np.empty(macro, np.float32),
            filtered=np.empty(macro, np.float32),
            rows=np.empty((2, w), np.float32),
        )


def spark_limit(n_pixels: int, per_pixel: float, offset: float) -> float:
    """The spark-veto threshold on the raw sum: per_pixel·Npixels + offset."""
    return per_pixel * n_pixels + offset


@dataclass(frozen=True)
class ChainParams:
    """Plain numbers the kernels need (taken from RecoConfig by the driver)."""

    cimax: int = 5000
    acceptance: tuple[int, int, int, int] = (304, 2054, 0, 1 << 20)  # x_lo, x_hi, y_lo, y_hi
    rebin: int = 4
    median: bool = True
    border: int = 2
    max_deviation: float = 10.0
    min_neighbors_average: float = 1.2
    min_active: int = 3
    spark_per_pixel: float = 200.0
    spark_offset: float = 9.0e6


@dataclass
class PictureSteps:
    """Result of steps 1–8 for one picture (arrays live in the workspace)."""

    vetoed: bool
    raw_sum: int
    cmos_integral: float
    cmos_mean: float
    cmos_rms: float
    points: np.ndarray
    weights: np.ndarray
    t_pass: float
    t_noise: float


def process(
    frame: np.ndarray,
    ped_mean: np.ndarray,
    threshold: np.ndarray,
    params: ChainParams,
    ws: Workspace,
) -> PictureSteps:
    """Steps 1–8 on one frame; rb, rbm and filtered are left in ``ws``."""
    h, w = frame.shape
    x_lo, x_hi, y_lo, y_hi = params.acceptance
    t0 = time.perf_counter()
    raw_sum, zs_sum, zs_sumsq = fused_pass(
        frame, ped_mean, threshold, params.cimax,
        max(x_lo, 0), min(x_hi, h), max(y_lo, 0), min(y_hi, w),
        params.rebin, ws.rb, ws.rbm, ws.rows,
    )  # fmt: skip
    t1 = time.perf_counter()
    n = h * w
    mean = zs_sum / n
    rms = float(np.sqrt(max(zs_sumsq / n - mean * mean, 0.0)))
    if raw_sum > spark_limit(n, params.spark_per_pixel, params.spark_offset):
        empty = np.empty((0, 2), np.int32)
        return PictureSteps(True, int(raw_sum), zs_sum, mean, rms, empty,
                            np.empty(0, np.int64), t1 - t0, 0.0)  # fmt: skip
    source = ws.rbm if params.median else ws.rb
    neighbour_filter(
        source, params.border, params.max_deviation, params.min_neighbors_average,
        params.min_active, ws.filtered,
    )  # fmt: skip
    points, weights = select_points(ws.filtered, ws.rb)
    t2 = time.perf_counter()
    return PictureSteps(False, int(raw_sum), zs_sum, mean, rms, points, weights,
                        t1 - t0, t2 - t1)  # fmt: skip


class PictureZ:
    """The pedestal-subtracted picture (raw ≥ cimax → 0, then − mean) in working-picture
    orientation, evaluated only where indexed: features need z at their hits only, so
    no full-resolution image is ever written."""

    def __init__(self, frame: np.ndarray, ped_mean: np.ndarray, cimax: int):
        self.frame, self.ped_mean, self.cimax = frame, ped_mean, cimax
        self.shape = frame.shape

    def __getitem__(self, index: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        x, y = index
        c = self.shape[1] - 1 - np.asarray(y)
        raw = self.frame[x, c]
        value = np.where(raw >= self.cimax, 0, raw).astype(np.float32)
        return value - self.ped_mean[x, c]


class PictureZS:
    """Zero-suppressed values (with acceptance) at the indexed pixels of a `PictureZ`."""

    def __init__(self, z: PictureZ, threshold: np.ndarray, acceptance: tuple[int, ...]):
        self.z, self.threshold, self.acceptance = z, threshold, acceptance
        self.shape = z.shape

    def __getitem__(self, index: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        x, y = (np.asarray(i) for i in index)
        x_lo, x_hi, y_lo, y_hi = self.acceptance
        zv = self.z[x, y]
        keep = zv > self.threshold[x, self.shape[1] - 1 - y]
        keep &= (x >= x_lo) & (x < x_hi) & (y >= y_lo) & (y < y_hi)
        return np.where(keep, zv, np.float32(0))
