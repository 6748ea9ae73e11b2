"""Per-cluster features on small hand-made pictures with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from cygno.reco.features import (
    BRANCHES,
    FIT_OK,
    INT_BRANCHES,
    MISSING,
    PRODUCTION_BRANCHES,
    REDPIX_BRANCHES,
    REDPIX_INDEX,
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
    return cluster_features(z, zs, pts, labels, tracklike, FeatureParams(**kw))[0]


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


def test_all_branches_present_with_production_types_and_empty_input():
    z = np.zeros((64, 64), np.float32)
    out = features(z, np.empty((0, 2), np.int32), np.empty(0, np.int32))
    assert tuple(out) == (*BRANCHES, REDPIX_INDEX, *REDPIX_BRANCHES)
    types = {**REDPIX_BRANCHES, **{n: "int32" for n in INT_BRANCHES}}
    for name, arr in out.items():
        assert arr.shape == (0,)
        assert arr.dtype == np.dtype(types.get(name, "float32"))
    assert not INT_BRANCHES & set(PRODUCTION_BRANCHES)  # production writes every sc_ as F


def test_round_blob_hits_integral_and_position():
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
    assert out["sc_tracklike"][0] == 0
    assert out["sc_energy"][0] == -1.0
    assert out["sc_pearson"][0] == 999.0 and out["sc_pathlength"][0] == -1.0


def test_straight_line_length_width_and_transverse_fit():
    shape = (256, 256)
    p0, p1 = (
        (40.0, 40.0),
        (40.0 + 150 * np.cos(np.radians(30)), 40.0 + 150 * np.sin(np.radians(30))),
    )
    z = gaussian_line(shape, p0, p1, 2.0, 40.0).astype(np.float32)
    pts = macro_points(z > 1.0)
    out = features(z, pts, tracklike=np.array([True]))
    assert out["sc_theta_major"][0] == pytest.approx(30.0, abs=1.0)
    assert out["sc_length"][0] == pytest.approx(150.0, abs=3 * R)
    assert out["sc_width"][0] < 25.0
    assert out["sc_tgausssigma"][0] == pytest.approx(2.0, rel=0.15)
    assert out["sc_tstatus"][0] == FIT_OK
    assert out["sc_latrms"][0] == pytest.approx(2.0, rel=0.2)
    assert out["sc_tracklike"][0] == 1


@pytest.mark.parametrize("elongated_along", ["x", "y"])
def test_theta_is_the_first_eigenvector_as_production_and_theta_major_the_major(
    elongated_along,
):
    z = np.zeros((128, 128), np.float32)
    if elongated_along == "y":
        z[60:64, 20:100] = 10.0
    else:
        z[20:100, 60:64] = 10.0
    out = features(z, macro_points(z > 0))
    # a diagonal covariance: eig keeps the (x, y) order, so column 0 is the x axis
    assert out["sc_theta"][0] == pytest.approx(0.0, abs=0.01)
    assert abs(out["sc_theta_major"][0]) == pytest.approx(
        90.0 if elongated_along == "y" else 0.0, abs=0.01
    )
    assert out["sc_length"][0] == pytest.approx(79.0)
    assert out["sc_width"][0] == pytest.approx(3.0)


def test_main_peak_is_the_last_as_production_and_lpeak_the_tallest():
    # A track along x: a big deposit early, a smaller one late.
    z = np.zeros((256, 64), np.float32)
    z[20:220, 30:34] = 1.0
    z[40:60, 30:34] = 50.0  # big, early
    z[180:200, 30:34] = 10.0  # smaller, late
    out = features(z, macro_points(z > 0))
    start = out["sc_xmin"][0]
    assert 180 <= start + out["sc_lp0mean"][0] <= 200
    assert 40 <= start + out["sc_lpeakmean"][0] <= 60
    assert out["sc_lpeakamplitude"][0] > 4 * out["sc_lp0amplitude"][0]
    # production's fwhm counts bins (here 4 px wide), ours is in pixels
    assert out["sc_lpeakfwhm"][0] > 2.0 * out["sc_lp0fwhm"][0] > 0


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


def test_single_macro_pixel_clusters_dropped_and_small_integrals_have_no_position():
    z = np.full((64, 64), -1.0, np.float32)
    z[20:24, 20:28] = 5.0
    z[40:44, 40:44] = 50.0
    pts = np.array([[5, 5], [5, 6], [10, 10], [12, 12]], np.int32)
    out = features(z, pts, np.array([0, 0, 1, -1], np.int32), np.zeros(2, bool))
    assert out["sc_size"].tolist() == [32]  # the lone macro-pixel (label 1) is dropped
    assert out["sc_integral"][0] == pytest.approx(160.0)
    assert out["sc_xmean"][0] == pytest.approx(21.5)
    z[20:24, 20:28] = 0.25  # integral 8 < 10: production writes 0 positions
    out = features(z, pts, np.array([0, 0, -1, -1], np.int32), np.zeros(1, bool))
    assert out["sc_xmean"][0] == out["sc_xmax"][0] == 0.0
    assert out["sc_lp0fwhm"][0] == MISSING  # no peak of height ≥ 3


def test_degenerate_clusters_give_finite_values():
    z = np.full((64, 64), -2.0, np.float32)  # no positive signal at all
    z[40:44, 40:48] = 7.0
    pts = np.array([[2, 2], [2, 3], [10, 10], [10, 11]], np.int32)
    out = features(z, pts, np.array([0, 0, 1, 1], np.int32), np.zeros(2, bool))
    assert out["sc_size"].tolist() == [32, 32]
    for name, arr in out.items():
        assert np.isfinite(arr).all(), name
    assert out["sc_integral"].tolist() == pytest.approx([32 * 7.0, 32 * -2.0])
    assert out["sc_nhits"][1] == 0
    assert out["sc_redpixIdx"].tolist() == [-1, -1]  # integrals below 850: not saved
    rms, sigma = out["sc_lfullrms"][1], out["sc_lgausssigma"][1]
    assert 0.5 * rms <= sigma <= 1.5 * rms  # production's limits hold on any profile
