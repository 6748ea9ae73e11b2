"""iDBSCAN on small hand-made macro-pixel pictures with known answers."""

from __future__ import annotations

import logging
import time

import numpy as np
import pytest

from cygno.reco.clustering.grid import cityblock_spans, euclidean_spans, span_cells
from cygno.reco.idbscan import ClusterResult, IDBSCANParams, idbscan


def cells(*shapes: set[tuple[int, int]]) -> np.ndarray:
    return np.array(sorted(set().union(*shapes)), dtype=np.int32).reshape(-1, 2)


def line(x0, y0, x1, y1, half_width=1, step=0.25) -> set[tuple[int, int]]:
    """Cells of a straight band of the given half width (macro-pixels)."""
    n = int(np.hypot(x1 - x0, y1 - y0) / step) + 1
    t = np.linspace(0.0, 1.0, n)
    out = set()
    for d in range(-half_width, half_width + 1):
        xs = np.rint(x0 + t * (x1 - x0)).astype(int) + d
        ys = np.rint(y0 + t * (y1 - y0)).astype(int)
        out |= set(zip(xs.tolist(), ys.tolist(), strict=True))
    return out


def disk(cx, cy, r) -> set[tuple[int, int]]:
    return {
        (cx + i, cy + j)
        for i in range(-r, r + 1)
        for j in range(-r, r + 1)
        if i * i + j * j <= r * r
    }


def weights(points: np.ndarray, w: int = 5) -> np.ndarray:
    return np.full(len(points), w, dtype=np.int64)


def clusters_of(res: ClusterResult, points: np.ndarray, shape: set) -> set[int]:
    idx = [i for i, p in enumerate(map(tuple, points.tolist())) if p in shape]
    return set(res.labels[idx].tolist())


def cells_of(spans: np.ndarray) -> set[tuple[int, int]]:
    return {(int(dx), dy) for dx, h in spans for dy in range(-h, h + 1)}


@pytest.mark.parametrize("radius", [1.0, 3.5, 5.0, 5.8, 12.0, 28.0])
def test_spans_are_exactly_the_diamond_and_the_disk(radius):
    r = int(radius) + 1
    box = [(dx, dy) for dx in range(-r, r + 1) for dy in range(-r, r + 1)]
    diamond = {c for c in box if abs(c[0]) + abs(c[1]) <= radius}
    disk_le = {c for c in box if c[0] ** 2 + c[1] ** 2 <= radius**2}
    disk_lt = {c for c in box if c[0] ** 2 + c[1] ** 2 < radius**2}
    assert cells_of(cityblock_spans(radius)) == diamond
    assert cells_of(euclidean_spans(radius)) == disk_le
    assert cells_of(euclidean_spans(radius, strict=True)) == disk_lt
    assert span_cells(cityblock_spans(radius)) == len(diamond)


def test_straight_line_is_one_tracklike_cluster():
    pts = cells(line(10, 20, 200, 120))
    res = idbscan(pts, weights(pts))
    assert res.labels.dtype == np.int32 and res.labels.shape == (len(pts),)
    assert set(res.labels.tolist()) == {0}
    assert res.tracklike.tolist() == [True]
    assert not res.timed_out


def test_vertical_line_is_tracklike_after_rotation():
    pts = cells(line(100, 10, 100, 300))
    res = idbscan(pts, weights(pts))
    assert set(res.labels.tolist()) == {0}
    assert res.tracklike.tolist() == [True]


def test_round_blob_is_one_cluster_not_tracklike():
    pts = cells(disk(50, 60, 4))
    res = idbscan(pts, weights(pts, 10))
    assert set(res.labels.tolist()) == {0}
    assert res.tracklike.tolist() == [False]


def test_two_separated_blobs_are_two_clusters():
    a, b = disk(50, 50, 4), disk(150, 80, 4)
    pts = cells(a, b)
    res = idbscan(pts, weights(pts, 10))
    la, lb = clusters_of(res, pts, a), clusters_of(res, pts, b)
    assert len(la) == 1 and len(lb) == 1 and la != lb
    assert -1 not in la | lb
    assert res.tracklike.tolist() == [False, False]


def test_two_touching_blobs_merge_into_one_cluster():
    pts = cells(disk(50, 50, 4), disk(58, 50, 4))
    res = idbscan(pts, weights(pts, 10))
    assert set(res.labels.tolist()) == {0}


def test_sparse_isolated_points_are_noise():
    rng = np.random.default_rng(3)
    pts = np.unique(rng.integers(0, 576, size=(40, 2)), axis=0).astype(np.int32)
    res = idbscan(pts, np.ones(len(pts), np.int64))
    assert (res.labels == -1).all()
    assert len(res.tracklike) == 0


def test_empty_input_gives_no_clusters():
    res = idbscan(np.empty((0, 2), np.int32), np.empty(0, np.int64))
    assert res.labels.shape == (0,) and res.tracklike.shape == (0,) and not res.timed_out


def test_directional_growth_bridges_a_gap_wider_than_eps():
    # Two halves of one straight track 24 cityblock apart (> eps 12, < dir_radius 28).
    first, second = line(10, 10, 150, 80), line(166, 88, 306, 158)
    pts = cells(first, second)
    res = idbscan(pts, weights(pts))
    assert clusters_of(res, pts, first) == clusters_of(res, pts, second) == {0}
    assert res.tracklike.tolist() == [True]
    plain = idbscan(pts, weights(pts), IDBSCANParams(dir_radius=12))
    assert len(plain.tracklike) == 2


def test_curved_track_is_one_tracklike_cluster():
    t = np.linspace(0, 300, 1200)
    arc = set(
        zip(
            np.rint(t + 20).astype(int).tolist(),
            np.rint(20 + t**2 / 400).astype(int).tolist(),
            strict=True,
        )
    )
    arc |= {(x, y + 1) for x, y in arc}
    pts = cells(arc)
    res = idbscan(pts, weights(pts))
    assert set(res.labels.tolist()) == {0}
    assert res.tracklike.tolist() == [True]


@pytest.mark.parametrize("distance", [17, 30])
def test_spot_beside_a_track_stays_separate(distance):
    # 17 macro-pixels = 69 px: production merged such a spot into the muon.
    track = line(10, 100, 400, 100)
    spot = disk(200, 100 + distance, 3)
    pts = cells(track, spot)
    res = idbscan(pts, weights(pts))
    lt, ls = clusters_of(res, pts, track), clusters_of(res, pts, spot)
    assert len(lt) == 1 and len(ls) == 1 and lt != ls
    assert res.tracklike[lt.pop()] and not res.tracklike[ls.pop()]


def test_points_within_isolation_radius_of_a_grown_track_become_noise():
    def band(x0, x1):
        return {(x, y) for x in range(x0, x1 + 1) for y in range(97, 104)}

    first, second = band(10, 150), band(170, 290)  # 20 apart: joined by the growth
    blob = disk(250, 110, 3)  # rows 107..113: outside the band |y - 100| < 6.5
    near = {(250, 107)}  # 4 from the track edge (< isolation radius 5)
    far = disk(450, 450, 2)  # a small seed, so min_seed is small
    pts = cells(first, second, blob, far)
    res = idbscan(pts, weights(pts, 10))
    track = clusters_of(res, pts, first | second)
    assert len(track) == 1 and res.tracklike[track.pop()]
    assert clusters_of(res, pts, near) == {-1}
    rest = clusters_of(res, pts, blob - near)
    assert len(rest) == 1 and -1 not in rest and not res.tracklike[rest.pop()]
    assert len(clusters_of(res, pts, far)) == 1


def test_same_seed_gives_identical_labels():
    rng = np.random.default_rng(7)
    noise = {tuple(p) for p in rng.integers(0, 400, size=(300, 2)).tolist()}
    pts = cells(line(20, 30, 380, 250, 2), disk(300, 60, 4), disk(60, 300, 3), noise)
    w = rng.integers(1, 20, size=len(pts)).astype(np.int64)
    a, b = idbscan(pts, w, seed=11), idbscan(pts, w, seed=11)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.tracklike, b.tracklike)
    assert a.tracklike.any()


def test_time_budget_ends_a_runaway_picture_with_a_warning(caplog):
    # Hundreds of short straight tracks: each is a directional candidate with its own fits.
    tracks = [line(x, y, x + 25, y + 6, 0) for x in range(0, 560, 40) for y in range(0, 560, 14)]
    pts = cells(*tracks)
    with caplog.at_level(logging.WARNING, logger="cygno.reco"):
        t0 = time.perf_counter()
        res = idbscan(pts, weights(pts, 20), time_budget_s=1e-4)
        elapsed = time.perf_counter() - t0
    assert res.timed_out
    assert any("time budget" in r.getMessage() for r in caplog.records)
    assert res.labels.shape == (len(pts),)
    assert elapsed < 2.0
    full = idbscan(pts, weights(pts, 20))
    assert not full.timed_out and full.tracklike.sum() > res.tracklike.sum()


def test_ten_thousand_points_finish_quickly():
    rng = np.random.default_rng(5)
    flat = rng.choice(576 * 576, size=10_000, replace=False)
    pts = np.stack([flat // 576, flat % 576], axis=1).astype(np.int32)
    idbscan(pts[:100], np.ones(100, np.int64))  # compile / load the kernels
    t0 = time.perf_counter()
    res = idbscan(pts, rng.integers(1, 5, size=len(pts)).astype(np.int64))
    assert time.perf_counter() - t0 < 5.0
    assert res.labels.shape == (10_000,) and not res.timed_out


def test_fourpass_separates_long_tracks_small_clusters_and_noise():
    track = line(10, 10, 300, 200, 1)
    blob = disk(400, 50, 4)
    lone = {(500, 500), (520, 300)}
    pts = cells(track, blob, lone)
    # Weight 20: a 3-wide track has ~21 points x 20 >= 200 within eps 3.5 (pass 1 cores).
    res = idbscan(pts, weights(pts, 20), IDBSCANParams(mode="fourpass"))
    lt, lb, ll = (clusters_of(res, pts, s) for s in (track, blob, lone))
    assert len(lt) == 1 and len(lb) == 1 and lt != lb
    assert ll == {-1}
    assert res.tracklike[lt.pop()] and not res.tracklike[lb.pop()]


@pytest.mark.parametrize("mode", ["refined", "production", "fourpass"])
def test_labels_are_compact(mode):
    pts = cells(disk(50, 50, 4), disk(150, 80, 4), line(200, 200, 400, 300))
    res = idbscan(pts, weights(pts, 10), IDBSCANParams(mode=mode))
    used = np.unique(res.labels[res.labels >= 0])
    np.testing.assert_array_equal(used, np.arange(len(res.tracklike)))
