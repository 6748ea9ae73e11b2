"""Per-cluster features on small hand-made pictures with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from cygno.reco.features import (
    BRANCHES,
    FIT_OK,
    FIT_SKIPPED,
    INT_BRANCHES,
    FeatureParams,
    cluster_features,
)

R = 4  # rebin


def macro_points(mask: np.ndarray) -> np.ndarray:
    """Macro-pixels (rebin 4) holding at least one True full-resolution pixel."""
    h, w = mask.shape
    m = mask.reshape(h // R, R, w // R, R).any(axis=(1, 3))
    return np.argwhere(m).astype(np.int32)


def features(z, pts, labels=None, tracklike=None, zs=None, **kw):
    labels = np.zeros(len(pts), np.int32) if labels is None else labels
    k = int(labels.max()) + 1 if len(labels) else 0
    tracklike = np.zeros(k, bool) if tracklike is None else tracklike
    zs = np.where(z > 0, z, 0) if zs is None else zs
    return cluster_features(z, zs, pts, labels, tracklike, FeatureParams(**kw))


def gaussian_blob(shape, cx, cy, sigma, amp):
    x, y = np.indices(shape, dtype=np.float64)
    return amp * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma**2))


def gaussian_line(shape, p0, p1, sigma, amp):
    """A segment from p0 to p1 with a Gaussian transverse profile (no falloff at the ends)."""
    x, y = np.indices(shape, dtype=np.float64)
    d = np.subtract(p1, p0, dtype=float)
    length = np.hypot(*d)
    ux, uy = d / length
    s = (x - p0[0]) * ux + (y - p0[1]) * uy
    t = -(x - p0[0]) * uy + (y - p0[1]) * ux
    z = amp * np.exp(-(t**2) / (2 * sigma**2))
    return np.where((s >= 0) & (s <= length), z, 0.0)


def test_all_branches_present_with_types_and_empty_input():
    z = np.zeros((64, 64), np.float32)
    out = features(z, np.empty((0, 2), np.int32), np.empty(0, np.int32))
    assert tuple(out) == BRANCHES
    for name, arr in out.items():
        assert arr.shape == (0,)
        assert arr.dtype == (np.int32 if name in INT_BRANCHES else np.float32)
    for name in ("sc_lgausssigma", "sc_tgausssigma", "sc_lp0fwhm", "sc_tp0fwhm", "sc_energy"):
        assert name in BRANCHES


def test_round_blob_centre_integral_and_sizes():
    rng = np.random.default_rng(0)
    z = rng.normal(0.0, 2.0, (128, 128)).astype(np.float32)
    z += gaussian_blob(z.shape, 62.0, 70.0, 4.0, 50.0).astype(np.float32)
    zs = np.where(z > 3.0, z, 0).astype(np.float32)
    pts = macro_points(gaussian_blob(z.shape, 62.0, 70.0, 4.0, 50.0) > 1.0)
    out = features(z, pts, zs=zs)
    hits = np.zeros(z.shape, bool)
    for px, py in pts:
        hits[px * R : px * R + R, py * R : py * R + R] = True
    assert out["sc_size"][0] == hits.sum() == len(pts) * R * R
    assert out["sc_nhits"][0] == np.count_nonzero(zs[hits] > 0)
    assert out["sc_integral"][0] == pytest.approx(z[hits].astype(np.float64).sum(), rel=1e-6)
    assert out["sc_rms"][0] == pytest.approx(z[hits].std(), rel=1e-5)
    assert out["sc_xmean"][0] == pytest.approx(62.0, abs=0.3)
    assert out["sc_ymean"][0] == pytest.approx(70.0, abs=0.3)
    xs, ys = np.nonzero(hits)
    assert (out["sc_xmin"][0], out["sc_xmax"][0]) == (xs.min(), xs.max())
    assert (out["sc_ymin"][0], out["sc_ymax"][0]) == (ys.min(), ys.max())
    assert out["sc_longrms"][0] == pytest.approx(4.0, rel=0.15)
    assert out["sc_latrms"][0] == pytest.approx(4.0, rel=0.15)
    assert out["sc_tracklike"][0] == 0
    assert out["sc_energy"][0] == -1.0


def test_straight_line_angle_length_and_transverse_fit():
    shape = (256, 256)
    p0, p1 = (
        (40.0, 40.0),
        (40.0 + 150 * np.cos(np.radians(30)), 40.0 + 150 * np.sin(np.radians(30))),
    )
    z = gaussian_line(shape, p0, p1, 2.0, 40.0).astype(np.float32)
    pts = macro_points(z > 1.0)
    out = features(z, pts, tracklike=np.array([True]))
    assert out["sc_theta"][0] == pytest.approx(30.0, abs=0.5)
    assert out["sc_length"][0] == pytest.approx(150.0, abs=2 * R)
    assert out["sc_width"][0] < 25.0
    assert out["sc_tgausssigma"][0] == pytest.approx(2.0, rel=0.1)
    assert out["sc_tstatus"][0] == FIT_OK
    assert out["sc_tgaussmean"][0] == pytest.approx(out["sc_width"][0] / 2, abs=0.7)
    assert out["sc_tp0fwhm"][0] == pytest.approx(2.355 * 2.0, rel=0.25)
    assert out["sc_latrms"][0] == pytest.approx(2.0, rel=0.1)
    assert out["sc_longrms"][0] == pytest.approx(150.0 / np.sqrt(12), rel=0.05)
    assert out["sc_tracklike"][0] == 1


def test_longitudinal_gaussian_fit_of_a_round_spot():
    z = gaussian_blob((128, 128), 64.0, 64.0, 5.0, 30.0).astype(np.float32)
    out = features(z, macro_points(z > 0.5))
    assert out["sc_lgausssigma"][0] == pytest.approx(5.0, rel=0.05)
    assert out["sc_lstatus"][0] == FIT_OK
    assert out["sc_lgaussmean"][0] == pytest.approx(out["sc_length"][0] / 2, abs=0.5)
    assert out["sc_lgaussamp"][0] == pytest.approx(out["sc_lp0amplitude"][0], rel=0.1)


@pytest.mark.parametrize("elongated_along", ["x", "y"])
def test_theta_is_the_major_axis(elongated_along):
    z = np.zeros((128, 128), np.float32)
    if elongated_along == "y":
        z[60:64, 20:100] = 10.0
    else:
        z[20:100, 60:64] = 10.0
    out = features(z, macro_points(z > 0))
    if elongated_along == "y":
        assert abs(out["sc_theta"][0]) == pytest.approx(90.0, abs=0.01)
    else:
        assert out["sc_theta"][0] == pytest.approx(0.0, abs=0.01)
    assert out["sc_length"][0] == pytest.approx(79.0)
    assert out["sc_width"][0] == pytest.approx(3.0)


def test_main_peak_is_the_tallest_not_the_last():
    # A track along x: a big deposit early, a small one late.
    z = np.zeros((256, 64), np.float32)
    z[20:220, 30:34] = 1.0
    z[40:44, 30:34] = 50.0  # big, early
    z[200:204, 30:34] = 10.0  # small, late
    out = features(z, macro_points(z > 0))
    assert out["sc_theta"][0] == pytest.approx(0.0, abs=1.0)
    assert out["sc_lp0amplitude"][0] == pytest.approx(4 * 50.0, rel=0.01)
    x_peak = out["sc_xmin"][0] + out["sc_lp0mean"][0]  # lp0mean: from the cluster start
    assert 40 <= x_peak <= 44
    assert out["sc_lp0prominence"][0] == pytest.approx(4 * 50.0, rel=0.01)
    assert out["sc_lp0fwhm"][0] == pytest.approx(4.0, abs=1.0)


def test_clusters_sorted_by_integral_and_energy_calibrated():
    z = np.zeros((128, 128), np.float32)
    z[8:16, 8:16] = 1.0  # small integral, label 0
    z[80:96, 80:96] = 3.0  # large integral, label 1
    pts = macro_points(z > 0)
    labels = (pts[:, 0] > 10).astype(np.int32)
    out = features(z, pts, labels, np.array([False, True]), calibration=0.01)
    np.testing.assert_allclose(out["sc_integral"], [16 * 16 * 3.0, 8 * 8 * 1.0])
    np.testing.assert_array_equal(out["sc_tracklike"], [1, 0])
    np.testing.assert_allclose(out["sc_energy"], out["sc_integral"] * 0.01, rtol=1e-6)
    np.testing.assert_allclose(out["sc_xmean"], [87.5, 11.5])


def test_noise_points_are_ignored_and_negative_values_count_in_the_integral():
    z = np.full((64, 64), -1.0, np.float32)
    z[20:24, 20:24] = 5.0
    pts = np.array([[5, 5], [12, 12]], np.int32)  # the second macro-pixel is noise
    out = features(z, pts, np.array([0, -1], np.int32))
    assert out["sc_size"].tolist() == [16]
    assert out["sc_integral"][0] == pytest.approx(80.0)
    z[20, 20] = -3.0
    out = features(z, pts, np.array([0, -1], np.int32))
    assert out["sc_integral"][0] == pytest.approx(72.0)
    assert out["sc_nhits"][0] == 15
    # max(z, 0) weights: the negative pixel does not pull the centre.
    assert out["sc_xmean"][0] == pytest.approx((20 * 3 + 21 * 4 + 22 * 4 + 23 * 4) / 15)


def test_degenerate_clusters_give_finite_values():
    z = np.full((64, 64), -2.0, np.float32)  # no positive signal at all
    z[40:44, 40:44] = 7.0  # a single bright macro-pixel
    pts = np.array([[2, 2], [2, 3], [10, 10]], np.int32)
    out = features(z, pts, np.array([0, 0, 1], np.int32), np.array([False, False]))
    assert out["sc_size"].tolist() == [16, 32]
    for name, arr in out.items():
        assert np.isfinite(arr).all(), name
    # Sorted by integral: the bright macro-pixel first, then the all-negative cluster.
    assert out["sc_integral"].tolist() == pytest.approx([16 * 7.0, 32 * -2.0])
    assert out["sc_xmean"][1] == pytest.approx(9.5)  # uniform weights when nothing is > 0
    assert out["sc_nhits"][1] == 0
    assert out["sc_lstatus"][1] == out["sc_tstatus"][1] == FIT_SKIPPED
