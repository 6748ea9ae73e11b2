"""numba kernels of the waveform analysis: baseline, noise, filter, peaks, time over threshold.

One digitizer block, (triggers, channels, samples), is analysed in one call: for every
trigger each PMT channel, then the noise-weighted average of the PMT channels (the
trigger's combined waveform). PMT pulses are negative, so a waveform is inverted around
its baseline (the mean of the first pre-trigger samples), then smoothed by a centred
moving average; noise (``rms``) is the standard deviation of the smoothed pre-trigger
samples (at least the raw samples' one over √window), and every threshold is a multiple
of it. A peak is a local maximum (the middle of
a plateau, as a saturated pulse makes) above ``height_rms``·rms whose prominence (height
above the higher of its two bases, the lowest points before a higher sample on either
side) reaches ``prominence_fraction`` of the waveform's maximum and whose width at half
prominence is at least ``min_width`` samples. Widths are measured at half and at 95 % of
the prominence with linear interpolation; a peak's integral sums the filtered waveform
between its 95 % edges. Positions, widths and times are in samples.
"""

from __future__ import annotations

import numba
import numpy as np

WF_FIELDS = (
    "baseline",
    "rms",
    "integral",
    "max_ampl",
    "npeaks",
    "tot_begin",
    "tot_time",
    "tot_area",
    "saturated",
    "snr",
)
PEAK_FIELDS = ("position", "height", "half_width", "full_width", "integral")
_F = {name: i for i, name in enumerate(WF_FIELDS)}


@numba.njit(cache=True, nogil=True)
def _smooth(raw, baseline, window, y, prefix):
    """Inverted, baseline-subtracted, centred moving average of `raw` into `y`."""
    n = raw.size
    prefix[0] = 0.0
    for i in range(n):
        prefix[i + 1] = prefix[i] + (baseline - raw[i])
    half = window // 2
    for i in range(n):
        lo = max(i - half, 0)
        hi = min(i - half + window, n)
        y[i] = (prefix[hi] - prefix[lo]) / (hi - lo)


@numba.njit(cache=True, nogil=True)
def _crossing(y, peak, stop, step, level):
    """Interpolated index where `y` falls to `level` walking from `peak` towards `stop`."""
    k = peak
    while k != stop and y[k] > level:
        k += step
    if y[k] >= level:
        return float(k)
    prev = k - step  # y[prev] > level >= y[k]
    return prev + step * (y[prev] - level) / (y[prev] - y[k])


@numba.njit(cache=True, nogil=True)
def _analyse(
    raw, nbase, window, height_rms, prom_frac, min_width, tot_rms, tot_open, tot_close,
    full_scale, y, prefix, wf_row, peaks, k0,
):  # fmt: skip
    """One waveform: fills `wf_row` (WF_FIELDS) and peaks[k0:k0 + npeaks]; returns npeaks."""
    n = raw.size
    nb = min(max(nbase, 2), n)
    baseline = 0.0
    saturated = 0.0
    for i in range(nb):
        baseline += raw[i]
    baseline /= nb
    for i in range(n):
        if raw[i] <= 0 or (full_scale > 0 and raw[i] >= full_scale):
            saturated = 1.0
    raw_var = 0.0
    for i in range(nb):
        raw_var += (raw[i] - baseline) ** 2
    _smooth(raw, baseline, max(window, 1), y, prefix)
    mean = 0.0
    for i in range(nb):
        mean += y[i]
    mean /= nb
    var = 0.0
    for i in range(nb):
        var += (y[i] - mean) ** 2
    # white noise averages down by √window; few pre-trigger samples estimate the filtered
    # noise poorly, so the raw samples' estimate is the floor
    rms = max(np.sqrt(var / nb), np.sqrt(raw_var / nb / max(window, 1)))
    total = 0.0
    ymax = y[0]
    for i in range(n):
        total += y[i]
        ymax = max(ymax, y[i])

    npk = 0
    i = 1
    while i < n - 1:
        if y[i] <= y[i - 1]:
            i += 1
            continue
        j = i
        while j + 1 < n and y[j + 1] == y[i]:
            j += 1
        if j + 1 >= n or y[j + 1] > y[i]:
            i = j + 1
            continue
        p = (i + j) // 2
        height = y[p]
        if height >= height_rms * rms:
            left_min = height
            left_at = i
            k = i - 1
            while k >= 0 and y[k] <= height:
                if y[k] < left_min:
                    left_min = y[k]
                    left_at = k
                k -= 1
            right_min = height
            right_at = j
            k = j + 1
            while k < n and y[k] <= height:
                if y[k] < right_min:
                    right_min = y[k]
                    right_at = k
                k += 1
            prominence = height - max(left_min, right_min)
            if prominence > 0 and prominence >= prom_frac * ymax:
                half = height - 0.5 * prominence
                lh = _crossing(y, p, left_at, -1, half)
                rh = _crossing(y, p, right_at, 1, half)
                if rh - lh >= min_width:
                    full = height - 0.95 * prominence
                    lf = _crossing(y, p, left_at, -1, full)
                    rf = _crossing(y, p, right_at, 1, full)
                    area = 0.0
                    for s in range(int(np.floor(lf)), int(np.ceil(rf)) + 1):
                        area += y[s]
                    row = k0 + npk
                    peaks[row, 0] = p
                    peaks[row, 1] = height
                    peaks[row, 2] = rh - lh
                    peaks[row, 3] = rf - lf
                    peaks[row, 4] = area
                    npk += 1
        i = j + 1

    # time over threshold: the first stretch that stays above the level
    level = tot_rms * rms
    up = 0
    down = 0
    begin = -1
    end = -1
    for s in range(n):
        if begin < 0:
            up = up + 1 if y[s] > level else 0
            if up == tot_open:
                begin = s - tot_open + 1
                down = 0
        else:
            down = down + 1 if y[s] < level else 0
            if down == tot_close:
                end = s - tot_close + 1
                break
    tot_area = 0.0
    if begin < 0:
        begin = 0
        end = 0
    elif end < 0:
        end = n
    for s in range(begin, end):
        tot_area += y[s]

    wf_row[0] = baseline
    wf_row[1] = rms
    wf_row[2] = total
    wf_row[3] = ymax
    wf_row[4] = npk
    wf_row[5] = begin
    wf_row[6] = end - begin
    wf_row[7] = tot_area
    wf_row[8] = saturated
    wf_row[9] = ymax / rms if rms > 0 else 0.0
    return npk


@numba.njit(cache=True, nogil=True)
def _analyse_block(
    block, channels, nbase, window, height_rms, prom_frac, min_width, tot_rms, tot_open,
    tot_close, full_scale, wf, avg, peaks, avg_peaks,
):  # fmt: skip
    """Every PMT waveform of a block into `wf` (trigger-major rows) and every trigger's
    noise-weighted average into `avg`; peaks packed in row order. Returns the peak counts."""
    ntrig = block.shape[0]
    n = block.shape[2]
    nch = channels.size
    y = np.empty(n)
    prefix = np.empty(n + 1)
    raw = np.empty(n)
    combined = np.empty(n)
    k = 0
    ka = 0
    for t in range(ntrig):
        weight_sum = 0.0
        combined[:] = 0.0
        for c in range(nch):
            for s in range(n):
                raw[s] = block[t, channels[c], s]
            row = t * nch + c
            k += _analyse(
                raw, nbase, window, height_rms, prom_frac, min_width, tot_rms, tot_open,
                tot_close, full_scale, y, prefix, wf[row], peaks, k,
            )  # fmt: skip
            weight = wf[row, 9]
            weight_sum += weight
            for s in range(n):
                combined[s] += weight * raw[s]
        if weight_sum > 0:
            for s in range(n):
                combined[s] /= weight_sum
        else:
            for s in range(n):
                combined[s] = 0.0
                for c in range(nch):
                    combined[s] += block[t, channels[c], s] / nch
        ka += _analyse(
            combined, nbase, window, height_rms, prom_frac, min_width, tot_rms, tot_open,
            tot_close, -1.0, y, prefix, avg[t], avg_peaks, ka,
        )  # fmt: skip
    return k, ka


def analyse_block(
    block: np.ndarray,
    channels: np.ndarray,
    *,
    baseline_samples: int,
    window: int,
    height_rms: float,
    prominence_fraction: float,
    min_width: float,
    tot_rms: float,
    tot_open: int,
    tot_close: int,
    full_scale: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(per-waveform rows, their peaks, per-trigger average rows, their peaks).

    Rows follow WF_FIELDS, trigger-major then channel; peaks follow PEAK_FIELDS, packed
    in row order (the ``npeaks`` column says how many belong to each row).
    """
    ntrig, _, n = block.shape
    channels = np.ascontiguousarray(channels, dtype=np.int64)
    wf = np.empty((ntrig * channels.size, len(WF_FIELDS)))
    avg = np.empty((ntrig, len(WF_FIELDS)))
    cap = n // 2 + 1
    peaks = np.empty((ntrig * channels.size * cap, len(PEAK_FIELDS)))
    avg_peaks = np.empty((ntrig * cap, len(PEAK_FIELDS)))
    k, ka = _analyse_block(
        block, channels, int(baseline_samples), int(window), float(height_rms),
        float(prominence_fraction), float(min_width), float(tot_rms), int(tot_open),
        int(tot_close), float(full_scale), wf, avg, peaks, avg_peaks,
    )  # fmt: skip
    return wf, peaks[:k].copy(), avg, avg_peaks[:ka].copy()


def column(rows: np.ndarray, name: str) -> np.ndarray:
    """One WF_FIELDS column of `analyse_block`'s rows."""
    return rows[:, _F[name]]
