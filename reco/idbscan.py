"""iDBSCAN on the macro-pixel grid: the directional form used in production, the same
with one refinement (the default), and the earlier four-pass form (docs/reconstruction.md,
"iDBSCAN").

``refined`` = ``production`` + blob splitting: production's directional phase swallows
every spot lying within eps of a long track into the track. After the tracks are built,
the points of each long track lying off its core (farther from its least-squares curve
than ``split_core_scale`` × the 90 % quantile of the core's distances, at least
``split_min_core``; the core is trimmed three times) are grouped by
8-connectivity; a group holding at least ``min_samples`` of weight leaves the track as a
cluster of its own.

Neighbours are found on the grid of the points (`clustering.grid`), fits are seeded
RANSAC (`ransac`), and a per-picture time budget stops a runaway directional phase with a
warning instead of hanging: the picture is then finished with plain DBSCAN.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np

from cygno.reco import ransac
from cygno.reco.clustering import grid as g

log = logging.getLogger("cygno.reco")

# 8-connectivity on the macro-pixel grid (the refinement's grouping of off-core points).
_EIGHT = np.array([[-1, 1], [0, 1], [1, 1]], dtype=np.int32)
# Production keeps a directional model when more than 80 % of the cluster is in its band.
_POLY_MIN_FRACTION = 0.8
_MIN_TRIALS = 16


MODES = ("refined", "production", "fourpass")


@dataclass(frozen=True)
class IDBSCANParams:
    """iDBSCAN parameters, LNGS defaults (distances in macro-pixels)."""

    mode: Literal["refined", "production", "fourpass"] = "refined"
    eps: float = 12.0  # cityblock
    min_samples: int = 20  # sum of weights within eps, the point itself included
    dir_radius: float = 28.0  # cityblock
    dir_min_accuracy: float = 0.95
    dir_minsamples: int = 12
    dir_thickness: float = 6.5
    max_attempts: int = 3
    isolation_radius: float = 5.0  # euclidean
    expand_noncore: bool = True
    max_poly_order: int = 2
    fourpass_eps: tuple[float, ...] = (1.0, 3.5, 5.8, 4.0)  # euclidean
    fourpass_min_samples: tuple[int, ...] = (1, 200, 35, 25)
    fourpass_size_cuts: tuple[int, ...] = (500, 100)
    split_min_track_length: float = 100.0  # only tracks at least this long (macro-pixels)
    split_core_scale: float = 1.3  # core half-width = scale × 90 % quantile of |distance|
    split_min_core: float = 2.5  # macro-pixels


class ClusterResult(NamedTuple):
    """labels: cluster id per point (-1 noise); tracklike: one flag per cluster id."""

    labels: np.ndarray
    tracklike: np.ndarray
    timed_out: bool


def idbscan(
    points: np.ndarray,
    weights: np.ndarray,
    params: IDBSCANParams | None = None,
    seed: int = 0,
    time_budget_s: float = 5.0,
) -> ClusterResult:
    """Cluster integer macro-pixel points (n, 2) [x, y] with integer weights >= 1."""
    params = params or IDBSCANParams()
    if params.mode not in MODES:
        raise ValueError(f"unknown iDBSCAN mode {params.mode!r}; expected one of {MODES}")
    _warm_up()
    points = np.asarray(points)
    n = len(points)
    if n == 0:
        return ClusterResult(np.empty(0, np.int32), np.empty(0, bool), False)
    pts, grid = g.index_grid(points)
    w = np.maximum(np.asarray(weights, dtype=np.int64), 1)
    if params.mode == "fourpass":
        return _fourpass(pts, grid, w, params)
    return _Directional(pts, grid, w, params, seed, time_budget_s).run()


_warm = False


def _warm_up() -> None:
    """Compile (or load from the numba cache) every kernel once per process on a tiny
    picture, so compile time never counts against a picture's time budget."""
    global _warm
    if _warm:
        return
    _warm = True
    line = [(i, i // 3 + d) for i in range(40) for d in range(3)]
    blob = [(60 + i, 60 + j) for i in range(-3, 4) for j in range(-3, 4)]
    pts = np.array(line + blob, dtype=np.int32)
    w = np.full(len(pts), 5, dtype=np.int64)
    idbscan(pts, w, IDBSCANParams(), time_budget_s=float("inf"))
    idbscan(pts, w, IDBSCANParams(mode="production"), time_budget_s=float("inf"))
    idbscan(pts, w, IDBSCANParams(mode="fourpass"), time_budget_s=float("inf"))
    curve = np.linspace(0.0, 30.0, 40)
    ransac.poly_band(curve, curve**2 / 30, 2, 1.0, 0.8, 4, ransac.rng_state(0))


def _compact(labels: np.ndarray, tracklike: np.ndarray) -> ClusterResult:
    """Renumber the used cluster ids to 0..k-1, keeping their order."""
    labels = labels.copy()
    labels[labels < 0] = g.NOISE
    used = np.unique(labels[labels >= 0])
    remap = np.full(max(int(labels.max()) + 1, 1), -1, dtype=np.int32)
    remap[used] = np.arange(len(used), dtype=np.int32)
    out = np.where(labels >= 0, remap[np.maximum(labels, 0)], g.NOISE).astype(np.int32)
    return ClusterResult(out, np.asarray(tracklike, bool)[used], False)


class _Directional:
    """Steps 1–8 of the directional iDBSCAN for one picture."""

    def __init__(self, pts, grid, w, params: IDBSCANParams, seed: int, budget: float):
        self.pts, self.grid, self.p, self.w = pts, grid, params, w
        self.eps_spans = g.cityblock_spans(params.eps)
        self.is_core = g.weighted_counts(grid, pts, w, self.eps_spans) >= params.min_samples
        self.state = ransac.rng_state(seed)
        self.deadline = time.perf_counter() + budget
        self.budget = budget
        self.timed_out = False
        self.xy = pts.astype(np.float64)
        self.stack = np.empty(len(pts), dtype=np.int32)

    def _out_of_time(self, where: str) -> bool:
        if not self.timed_out and time.perf_counter() > self.deadline:
            self.timed_out = True
            log.warning(
                "iDBSCAN time budget of %.3g s exceeded during %s on %d points; "
                "finishing the picture with plain DBSCAN",
                self.budget,
                where,
                len(self.pts),
            )
        return self.timed_out

    def run(self) -> ClusterResult:
        p = self.p
        n = len(self.pts)
        seeds = np.full(n, g.NOISE, dtype=np.int32)
        n_seeds = g.dbscan(self.grid, self.pts, self.eps_spans, self.is_core, seeds, 0)
        if n_seeds == 0:
            return ClusterResult(seeds, np.zeros(0, bool), False)
        sizes = np.bincount(seeds[seeds >= 0], minlength=n_seeds)
        min_seed = int(sizes.min())
        candidates = self._straight_seeds(seeds, sizes)
        if not candidates:
            return ClusterResult(seeds, np.zeros(n_seeds, bool), self.timed_out)

        labels = np.full(n, g.NOISE, dtype=np.int32)
        n_tracks, models = self._tracks(seeds, candidates, labels)
        n_split = n_tracks
        if p.mode == "refined":
            for t, model in enumerate(models):
                n_split = self._split_blobs(labels, t, model, n_split)
        # Step 6: isolation of the tracks, then step 7: plain DBSCAN on the rest.
        if n_tracks:
            iso = g.euclidean_spans(p.isolation_radius, strict=True)
            g.mark_near(self.grid, self.pts, iso, labels, 0, n_tracks, g.EXCLUDED)
        n_all = g.dbscan(self.grid, self.pts, self.eps_spans, self.is_core, labels, n_split)
        rest = np.bincount(labels[labels >= 0], minlength=n_all)
        small = np.nonzero(rest < min_seed)[0]
        small = small[small >= n_split]
        labels[np.isin(labels, small)] = g.NOISE
        tracklike = np.arange(n_all) < n_tracks
        res = _compact(labels, tracklike)
        return res._replace(timed_out=self.timed_out)

    def _straight_seeds(self, seeds, sizes) -> list[int]:
        """Step 3: seeds whose RANSAC line accuracy (also after a 45° turn) > dir_min_accuracy."""
        p = self.p
        trials = max(ransac.trials_for(p.dir_min_accuracy, 2), _MIN_TRIALS)
        order = np.argsort(seeds, kind="stable")
        starts = np.searchsorted(seeds[order], np.arange(len(sizes)))
        c = np.cos(np.pi / 4)
        found = []
        for s in np.nonzero(sizes > p.dir_minsamples)[0]:
            if self._out_of_time("the straightness test"):
                break
            idx = order[starts[s] : starts[s] + sizes[s]]
            x, y = self.xy[idx, 0], self.xy[idx, 1]
            acc = ransac.line_accuracy(x, y, _mad_threshold(y), trials, self.state)
            if acc < p.dir_min_accuracy:
                xr, yr = c * (x - y), c * (x + y)
                acc = ransac.line_accuracy(xr, yr, _mad_threshold(yr), trials, self.state)
            if acc > p.dir_min_accuracy:
                found.append((-acc, -int(sizes[s]), int(s)))
        return [s for _, _, s in sorted(found)]

    def _split_blobs(self, labels, track: int, model, next_label: int) -> int:
        """Refinement: off-core groups of a long track with at least min_samples of weight
        become clusters next_label, next_label+1, …; returns the next free label."""
        p = self.p
        members = np.nonzero(labels == track)[0]
        coef, swapped, order = model
        x, y = self.xy[members, 0], self.xy[members, 1]
        if swapped:
            x, y = y, x
        if np.ptp(x) < p.split_min_track_length:
            return next_label
        # the track's own curve: least squares on its core, trimmed twice
        core = np.abs(_distance(x, y, coef)) < p.dir_thickness
        for _ in range(3):
            fit, ok = ransac.polyfit_ls(x, y, core, order)
            if not ok:
                return next_label
            r = np.abs(_distance(x, y, fit))
            half = max(p.split_core_scale * np.quantile(r[core], 0.9), p.split_min_core)
            core = r <= half
        off = ~core
        if not off.any():
            return next_label
        groups = np.full(len(self.pts), g.EXCLUDED, dtype=np.int32)
        groups[members[off]] = g.NOISE
        everyone = np.ones(len(self.pts), dtype=np.bool_)
        end = g.dbscan(self.grid, self.pts, _EIGHT, everyone, groups, 0)
        weight = np.bincount(groups[groups >= 0], weights=self.w[groups >= 0], minlength=end)
        for k in np.nonzero(weight >= p.min_samples)[0]:
            labels[groups == k] = next_label
            next_label += 1
        return next_label

    def _tracks(self, seeds, candidates, labels) -> tuple[int, list]:
        """Steps 5–6: directional expansion of each candidate; returns the number of tracks
        and their band models.

        A track only takes points no earlier track holds (production could take them over).
        """
        p = self.p
        dir_spans = g.cityblock_spans(p.dir_radius)
        label = 0
        models = []
        for s in candidates:
            if self._out_of_time("the directional expansion"):
                break
            members = np.nonzero((seeds == s) & self.is_core)[0]
            start = int(members[0])
            if labels[start] != g.NOISE:
                continue
            size = g.expand(
                self.grid, self.pts, self.eps_spans, self.is_core, labels, start, label,
                p.expand_noncore, self.stack,
            )  # fmt: skip
            model = self._fit(labels == label) if size > p.dir_minsamples else None
            if model is None:
                labels[labels == label] = g.NOISE
                continue
            for _ in range(p.max_attempts):
                if self._out_of_time("the directional growth"):
                    break
                band = _in_band(self.xy, model, p.dir_thickness)
                if g.grow_in_band(self.grid, self.pts, dir_spans, labels, label, band) == 0:
                    break
                model = self._fit(labels == label, min_order=model[2]) or model
            if np.count_nonzero(labels == label) < p.dir_minsamples:
                labels[labels == label] = g.NOISE
                continue
            models.append(model)
            label += 1
        return label, models

    def _fit(self, mask, min_order: int = 1):
        """Polynomial band model (coef, swapped, order) of the masked points, or None."""
        p = self.p
        x, y = self.xy[mask, 0], self.xy[mask, 1]
        swapped = bool(np.std(y) > np.std(x))
        if swapped:
            x, y = y, x
        for order in range(min_order, p.max_poly_order + 1):
            trials = max(ransac.trials_for(_POLY_MIN_FRACTION, order + 1), _MIN_TRIALS)
            coef, _, ok = ransac.poly_band(
                x, y, order, p.dir_thickness, _POLY_MIN_FRACTION, trials, self.state
            )
            if ok:
                return coef, swapped, order
        return None


def _in_band(xy: np.ndarray, model, thickness: float) -> np.ndarray:
    coef, swapped, _ = model
    x, y = (xy[:, 1], xy[:, 0]) if swapped else (xy[:, 0], xy[:, 1])
    x, y = np.ascontiguousarray(x), np.ascontiguousarray(y)
    out = np.empty(len(xy), dtype=np.bool_)
    ransac.band_inliers(x, y, coef, thickness, out)
    return out


def _distance(x: np.ndarray, y: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """Signed distance of points from the curve y = c0 + c1·x + c2·x² (first order)."""
    slope = coef[1] + 2.0 * coef[2] * x
    return (y - (coef[0] + coef[1] * x + coef[2] * x * x)) / np.sqrt(1.0 + slope * slope)


def _mad_threshold(y: np.ndarray) -> float:
    """Production's straightness threshold: median absolute deviation of y (0.3 if zero)."""
    mad = float(np.median(np.abs(y - np.median(y))))
    return mad if mad > 0 else 0.3


def _fourpass(pts, grid, w, params: IDBSCANParams) -> ClusterResult:
    """Four-pass iDBSCAN (JINST 15 T12003): noise removal, then long, medium, small clusters.

    Pass 0 drops points that no cluster claims; passes 1..3 cluster what is still free,
    keeping clusters of at least size_cuts[k-1] points (the last pass keeps all). Clusters
    of pass 1 (long ones) are flagged track-like.
    """
    eps, mins, cuts = params.fourpass_eps, params.fourpass_min_samples, params.fourpass_size_cuts
    labels = np.full(len(pts), g.NOISE, dtype=np.int32)
    spans = g.euclidean_spans(eps[0])
    core = g.weighted_counts(grid, pts, w, spans) >= mins[0]
    g.dbscan(grid, pts, spans, core, labels, 0)
    free = labels >= 0
    labels[:] = np.where(free, g.NOISE, g.EXCLUDED)
    next_label, tracklike = 0, []
    for k in range(1, len(eps)):
        spans = g.euclidean_spans(eps[k])
        core = g.weighted_counts(grid, pts, w, spans) >= mins[k]
        trial = labels.copy()
        end = g.dbscan(grid, pts, spans, core, trial, next_label)
        sizes = np.bincount(trial[trial >= next_label] - next_label, minlength=end - next_label)
        cut = cuts[k - 1] if k - 1 < len(cuts) else 0
        keep = np.nonzero(sizes >= cut)[0] + next_label
        kept = np.isin(trial, keep)
        labels[kept] = trial[kept]
        tracklike += [k == 1] * (end - next_label)
        next_label = end
    return _compact(labels, np.array(tracklike, bool))
