"""The numba kernels against the reference implementations of scikit-learn and
scikit-image: DBSCAN, RANSAC, the 2×2 median filter, the block-mean rebinning and the
image moments behind the cluster axes."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import filters, measure, transform
from sklearn.cluster import DBSCAN
from sklearn.linear_model import LinearRegression, RANSACRegressor

from cygno.reco import picture as pic
from cygno.reco import ransac
from cygno.reco.clustering import grid as g
from cygno.reco.features import FeatureParams, cluster_features

R = 4


@pytest.fixture(scope="module")
def picture():
    """A noisy zero-suppressed 256×256 frame with a few blobs and a line (working picture)."""
    rng = np.random.default_rng(3)
    frame = rng.normal(100, 2, (256, 256))
    x, y = np.indices(frame.shape)
    for cx, cy, s, a in ((60, 70, 4, 40), (180, 200, 6, 25), (120, 40, 3, 60)):
        frame += a * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * s * s))
    frame += 30 * np.exp(-(((x - 0.8 * y - 20) / 2.0) ** 2)) * (y > 100)
    frame = np.clip(frame, 0, 65535).astype(np.uint16)
    mean = np.full(frame.shape, 100, np.float32)
    threshold = np.full(frame.shape, 1.2, np.float32)
    params = pic.ChainParams(acceptance=(0, 256, 0, 256), rebin=R)
    ws = pic.Workspace.for_shape(frame.shape, R)
    steps = pic.process(frame, mean, threshold, params, ws)
    z = frame[:, ::-1].astype(np.float32) - 100  # working picture = frame[:, ::-1]
    zs = np.where(z > 1.2, z, 0).astype(np.float32)
    return steps, ws, zs


def test_rebin_is_skimage_block_mean(picture):
    _, ws, zs = picture
    np.testing.assert_allclose(ws.rb, transform.downscale_local_mean(zs, (R, R)), atol=1e-4)


def test_median_then_rebin_is_skimage_median(picture):
    _, ws, zs = picture
    med = filters.median(zs, footprint=np.ones((2, 2)), mode="reflect", behavior="ndimage")
    np.testing.assert_allclose(ws.rbm, transform.downscale_local_mean(med, (R, R)), atol=1e-4)


def test_grid_dbscan_is_sklearn_dbscan_with_weights(picture):
    steps, _, _ = picture
    points, weights = steps.points, steps.weights
    eps, min_samples = 3.0, 20
    pts, grid = g.index_grid(points)
    spans = g.cityblock_spans(eps)
    core = g.weighted_counts(grid, pts, weights, spans) >= min_samples
    ours = np.full(len(pts), g.NOISE, np.int32)
    g.dbscan(grid, pts, spans, core, ours, 0)
    ref = DBSCAN(eps=eps, min_samples=min_samples, metric="cityblock").fit(
        points, sample_weight=weights
    )
    ref_core = np.zeros(len(points), bool)
    ref_core[ref.core_sample_indices_] = True
    np.testing.assert_array_equal(core, ref_core)
    # same partition of the core points, same noise; a border point may join either
    # neighbouring cluster, in both implementations one of its core neighbours' clusters
    assert len(set(ours[core])) == len(set(ref.labels_[core])) >= 3
    pairs = set(zip(ours[core], ref.labels_[core], strict=True))
    assert len(pairs) == len(set(ours[core]))
    np.testing.assert_array_equal(ours == g.NOISE, ref.labels_ == -1)


def test_ransac_line_accuracy_matches_sklearn_ransac():
    rng = np.random.default_rng(9)
    x = rng.uniform(0, 100, 300)
    y = 0.4 * x + 7 + rng.normal(0, 0.5, 300)
    outliers = rng.random(300) < 0.3
    y[outliers] += rng.uniform(-40, 40, outliers.sum())
    threshold = 2.0
    ours = ransac.line_accuracy(x, y, threshold, 200, ransac.rng_state(1))
    ref = RANSACRegressor(
        LinearRegression(), residual_threshold=threshold, max_trials=200, random_state=0
    ).fit(x[:, None], y)
    assert ours == pytest.approx(ref.inlier_mask_.mean(), abs=0.02)


def test_major_axis_is_skimage_moments_orientation():
    rng = np.random.default_rng(4)
    for _ in range(5):
        angle = rng.uniform(-np.pi / 2, np.pi / 2)
        t = np.linspace(-25, 25, 200)
        w = rng.normal(0, 2.0, 200)
        mx = np.round(40 + t * np.cos(angle) - w * np.sin(angle)).astype(int)
        my = np.round(40 + t * np.sin(angle) + w * np.cos(angle)).astype(int)
        macro = np.unique(np.column_stack([mx, my]), axis=0).astype(np.int32)
        image = np.zeros((80, 80))
        image[macro[:, 0], macro[:, 1]] = 1
        mu = measure.moments_central(image, order=2)
        theta = 0.5 * np.degrees(np.arctan2(2 * mu[1, 1], mu[2, 0] - mu[0, 2]))
        z = np.ones((80 * R, 80 * R), np.float32)
        out, _ = cluster_features(
            z, z, macro, np.zeros(len(macro), np.int32), np.zeros(1, bool), FeatureParams()
        )
        assert out["sc_theta_major"][0] == pytest.approx(theta, abs=1e-3)
