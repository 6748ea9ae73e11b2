"""Neighbour search on the macro-pixel grid itself.

Points are unique integer cells on a bounded grid, so a dense index grid plus the
neighbourhood as rows of cells (a cityblock diamond or a euclidean disk: one contiguous
run of y per dx) finds every neighbour of a point in O(size of the neighbourhood), with
no distance matrix and no tree. All kernels are numba
compiled with `cache=True` so the first-call compile cost is paid once per machine.
"""

from __future__ import annotations

import numpy as np
from numba import njit

NOISE = -1
# Temporary label for points removed from later passes (isolation, size cuts).
EXCLUDED = -2


def cityblock_spans(radius: float) -> np.ndarray:
    """Neighbourhood |dx| + |dy| <= radius as rows (dx, half-width in y), int32 (m, 2)."""
    r = int(np.floor(radius))
    dx = np.arange(-r, r + 1)
    return np.stack([dx, np.floor(radius - np.abs(dx))], axis=1).astype(np.int32)


def euclidean_spans(radius: float, strict: bool = False) -> np.ndarray:
    """Neighbourhood dx² + dy² <= radius² (< when strict) as rows (dx, half-width in y)."""
    r = int(np.floor(radius))
    dx = np.arange(-r, r + 1)
    room = radius * radius - dx * dx
    hw = np.floor(np.sqrt(room)).astype(np.int64)
    if strict:
        hw[hw * hw >= room] -= 1
    keep = hw >= 0
    return np.stack([dx[keep], hw[keep]], axis=1).astype(np.int32)


def span_cells(spans: np.ndarray) -> int:
    """Number of cells in a neighbourhood."""
    return int((2 * spans[:, 1] + 1).sum())


def index_grid(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shift points to start at 0 and build the grid of point indices (-1 = empty cell)."""
    local = (points - points.min(axis=0)).astype(np.int32)
    grid = np.full(tuple(local.max(axis=0) + 1), -1, dtype=np.int32)
    grid[local[:, 0], local[:, 1]] = np.arange(len(points), dtype=np.int32)
    return local, grid


@njit(cache=True)
def weighted_counts(grid, pts, weights, spans):
    """Sum of weights of all points within the neighbourhood of each point (itself included)."""
    n = pts.shape[0]
    nx, ny = grid.shape
    out = np.zeros(n, dtype=np.int64)
    for i in range(n):
        px, py = pts[i, 0], pts[i, 1]
        s = 0
        for k in range(spans.shape[0]):
            x = px + spans[k, 0]
            if x < 0 or x >= nx:
                continue
            h = spans[k, 1]
            for y in range(max(py - h, 0), min(py + h + 1, ny)):
                j = grid[x, y]
                if j >= 0:
                    s += weights[j]
        out[i] = s
    return out


@njit(cache=True)
def expand(grid, pts, spans, is_core, labels, start, label, expand_all, stack):
    """Breadth-first DBSCAN expansion from `start` over points whose label is NOISE.

    Core points (or every point when `expand_all`) pass the expansion on. Returns the
    number of points that received `label`.
    """
    nx, ny = grid.shape
    labels[start] = label
    stack[0] = start
    top = 1
    count = 1
    while top > 0:
        top -= 1
        i = stack[top]
        if not (expand_all or is_core[i]):
            continue
        px, py = pts[i, 0], pts[i, 1]
        for k in range(spans.shape[0]):
            x = px + spans[k, 0]
            if x < 0 or x >= nx:
                continue
            h = spans[k, 1]
            for y in range(max(py - h, 0), min(py + h + 1, ny)):
                j = grid[x, y]
                if j >= 0 and labels[j] == NOISE:
                    labels[j] = label
                    stack[top] = j
                    top += 1
                    count += 1
    return count


@njit(cache=True)
def dbscan(grid, pts, spans, is_core, labels, first_label):
    """Plain DBSCAN over the points still labelled NOISE; returns the next free label."""
    stack = np.empty(pts.shape[0], dtype=np.int32)
    label = first_label
    for i in range(pts.shape[0]):
        if labels[i] == NOISE and is_core[i]:
            expand(grid, pts, spans, is_core, labels, i, label, False, stack)
            label += 1
    return label


@njit(cache=True)
def grow_in_band(grid, pts, spans, labels, label, in_band):
    """Add band points (label NOISE) within `spans` of the cluster, following chains.

    Band points next to a member seed a breadth-first search that moves through band
    points only, so the cost is bounded by (candidates + added) × neighbourhood size.
    Returns the number of points added.
    """
    nx, ny = grid.shape
    cand = np.nonzero(in_band & (labels == NOISE))[0]
    queue = np.empty(cand.shape[0], dtype=np.int64)
    top = 0
    for c in range(cand.shape[0]):
        i = cand[c]
        if _touches(grid, pts[i, 0], pts[i, 1], spans, labels, label, label + 1):
            queue[top] = i
            top += 1
    for q in range(top):
        labels[queue[q]] = label
    added = top
    while top > 0:
        top -= 1
        i = queue[top]
        px, py = pts[i, 0], pts[i, 1]
        for k in range(spans.shape[0]):
            x = px + spans[k, 0]
            if x < 0 or x >= nx:
                continue
            h = spans[k, 1]
            for y in range(max(py - h, 0), min(py + h + 1, ny)):
                j = grid[x, y]
                if j >= 0 and in_band[j] and labels[j] == NOISE:
                    labels[j] = label
                    queue[top] = j
                    top += 1
                    added += 1
    return added


@njit(cache=True)
def _touches(grid, px, py, spans, labels, lo, hi):
    """True when a point with label in [lo, hi) lies in the neighbourhood of (px, py)."""
    nx, ny = grid.shape
    for k in range(spans.shape[0]):
        x = px + spans[k, 0]
        if x < 0 or x >= nx:
            continue
        h = spans[k, 1]
        for y in range(max(py - h, 0), min(py + h + 1, ny)):
            j = grid[x, y]
            if j >= 0 and lo <= labels[j] < hi:
                return True
    return False


@njit(cache=True)
def mark_near(grid, pts, spans, labels, target, n_target, mark):
    """Relabel NOISE points with a neighbour whose label is in [target, target+n_target)."""
    for i in range(pts.shape[0]):
        if labels[i] == NOISE and _touches(
            grid, pts[i, 0], pts[i, 1], spans, labels, target, target + n_target
        ):
            labels[i] = mark
