"""Per-step tests of the numba picture chain on small hand-made arrays with known answers,
and a cross-check against the plain numpy/scipy chain on a noisy picture."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from cygno.reco import picture as pic
from tests.reco import naive

H = W = 64
NO_ACCEPTANCE_CUT = (0, 1 << 20, 0, 1 << 20)


def run(frame, mean=100.0, sigma=1.0, nsigma=0.6, **kw):
    """Steps 1–8 on a small frame with flat pedestal maps."""
    shape = frame.shape
    mean_map = np.full(shape, mean, np.float32)
    thr = np.full(shape, np.float32(nsigma * sigma), np.float32)
    params = pic.ChainParams(**{"acceptance": NO_ACCEPTANCE_CUT, **kw})
    ws = pic.Workspace.for_shape(shape, params.rebin)
    return pic.process(frame.astype(np.uint16), mean_map, thr, params, ws), ws


def full_z(frame, mean=100.0, cimax=5000):
    """The whole working picture of z through PictureZ (which is indexed at hits only)."""
    z = pic.PictureZ(frame, np.full(frame.shape, mean, np.float32), cimax)
    xs, ys = np.indices(frame.shape)
    return z[xs.ravel(), ys.ravel()].reshape(frame.shape)


def test_empty_picture_gives_no_points():
    frame = np.full((H, W), 100, np.uint16)
    steps, _ = run(frame)
    assert not steps.vetoed
    assert len(steps.points) == 0
    assert steps.cmos_integral == 0.0
    assert np.all(full_z(frame) == 0)


def test_all_saturated_picture_is_zeroed_not_crashing():
    frame = np.full((H, W), 65535, np.uint16)
    steps, _ = run(frame, spark_offset=1e12)
    assert not steps.vetoed
    assert len(steps.points) == 0
    assert np.all(full_z(frame) == -100.0)  # cimax sets raw to 0 before subtraction
    assert steps.cmos_integral == 0.0


def test_spark_veto_threshold():
    frame = np.full((H, W), 100, np.uint16)
    limit = pic.spark_limit(H * W, 200.0, 1000.0)  # 2·100·Npix + offset
    frame[0, 0] += 1000  # raw sum = 100·Npix + 1000 < limit
    assert not run(frame, spark_offset=1000.0)[0].vetoed
    bright = np.full((H, W), 301, np.uint16)  # raw sum > 2·100·Npix + 1000
    steps, _ = run(bright, spark_offset=1000.0)
    assert steps.vetoed and steps.raw_sum == 301 * H * W > limit
    assert len(steps.points) == 0


def test_zero_suppression_is_strict_and_per_pixel():
    frame = np.full((H, W), 100, np.uint16)
    frame[10, 10] = 101  # z = 1 > 0.6 → kept
    frame[20, 20] = 101
    thr = np.full((H, W), 0.6, np.float32)
    thr[20, 20] = 1.0  # z = 1 is not > 1 → suppressed
    params = pic.ChainParams(acceptance=NO_ACCEPTANCE_CUT)
    ws = pic.Workspace.for_shape((H, W), 4)
    steps = pic.process(frame, np.full((H, W), 100, np.float32), thr, params, ws)
    assert steps.cmos_integral == 1.0
    # picture orientation: frame (10, 10) → picture (10, W-1-10)
    assert full_z(frame)[10, W - 1 - 10] == 1.0
    zs = pic.PictureZS(
        pic.PictureZ(frame, np.full((H, W), 100, np.float32), 5000), thr, (0, H, 0, W)
    )
    assert zs[np.array([10, 20]), np.array([W - 11, W - 21])].tolist() == [1.0, 0.0]
    assert ws.rb[10 // 4, (W - 1 - 10) // 4] == pytest.approx(1 / 16)


def test_acceptance_rows_and_columns_in_picture_coordinates():
    frame = np.full((H, W), 150, np.uint16)  # z = 50 everywhere
    steps, ws = run(frame, acceptance=(8, 56, 4, 60), median=False)
    zs_area = (56 - 8) * (60 - 4)
    assert steps.cmos_integral == 50.0 * zs_area
    assert steps.cmos_mean == pytest.approx(50.0 * zs_area / (H * W))
    assert ws.rb[1, 5] == 0.0 and ws.rb[2, 5] == 50.0  # rows 4–7 out, 8–11 in
    assert ws.rb[5, 0] == 0.0 and ws.rb[5, 1] == 50.0  # columns 0–3 out, 4–7 in
    assert ws.rb[14, 5] == 0.0 and ws.rb[13, 5] == 50.0  # rows ≥ 56 out


def test_rebin_is_block_mean_in_picture_orientation():
    rng = np.random.default_rng(3)
    frame = rng.integers(100, 200, (H, W)).astype(np.uint16)
    _, ws = run(frame, sigma=0.0, nsigma=0.0, median=False)
    pict = frame[:, ::-1].astype(np.float64) - 100
    pict[pict <= 0] = 0
    np.testing.assert_allclose(ws.rb, naive.rebin(pict, 4), rtol=1e-6)


def test_median_2x2_matches_scipy_before_rebin():
    rng = np.random.default_rng(4)
    frame = (100 + rng.integers(0, 30, (H, W)) * (rng.random((H, W)) < 0.4)).astype(np.uint16)
    _, ws = run(frame, sigma=0.0, nsigma=0.0)
    pict = np.maximum(frame[:, ::-1].astype(np.float32) - 100, 0)
    expected = naive.rebin(ndimage.median_filter(pict, size=2), 4)
    np.testing.assert_allclose(ws.rbm, expected, rtol=1e-6)


def test_neighbour_filter_known_answers():
    img = np.zeros((10, 10), np.float32)
    img[4:7, 4:7] = 5.0  # a 3×3 blob
    img[4, 4] = 30.0  # one outlier: |30 − m| > 10 → replaced by m
    img[1, 1] = 50.0  # inside the 2-pixel border → zeroed
    img[8, 2] = 9.0  # isolated in the interior: m < 1.2 and < 3 active → 0
    out = np.empty_like(img)
    pic.neighbour_filter(img, 2, 10.0, 1.2, 3, out)
    assert out[1, 1] == 0 and out[8, 2] == 0
    assert out[5, 5] == 5.0  # kept: m = (7·5 + 30)/8 is within 10 of v
    assert out[4, 4] == pytest.approx(5.0 * 3 / 8)  # replaced by its neighbour mean
    assert out[3, 3] == 0  # m = 30/8 ≥ 1.2 but only 1 non-zero in its 3×3 block
    np.testing.assert_allclose(out, naive.neighbour_filter(img), rtol=1e-6)


def test_points_weights_of_a_line():
    frame = np.full((H, W), 100, np.uint16)
    frame[28:32, 8:56] += 40  # 4 rows thick: exactly macro row 7; picture y 8…55
    steps, _ = run(frame)
    got = {(int(x), int(y)): int(w) for (x, y), w in zip(steps.points, steps.weights, strict=True)}
    core = {(7, y): 40 for y in range(2, 14)}  # weight = int(rebinned ZS value)
    assert core.items() <= got.items()
    # The upper-median 2×2 window (rows x−1..x) shifts light one row down, so macro row 8
    # gets 10 (weight 1); row 6 is raised to its neighbour mean 15 by |v − m| > 10.
    assert {x for x, _ in got} == {6, 7, 8}
    assert all(w == 1 for (x, _), w in got.items() if x != 7)


def test_blob_points_and_weights():
    frame = np.full((H, W), 100, np.uint16)
    frame[8:16, 8:16] += 20  # macro rows 2–3, picture y 48–55 → macro columns 12–13
    steps, _ = run(frame)
    strong = {tuple(p) for p, w in zip(steps.points.tolist(), steps.weights, strict=True) if w > 1}
    assert strong == {(2, 12), (2, 13), (3, 12), (3, 13)}
    assert set(steps.weights[steps.weights > 1]) == {20}


def test_two_touching_blobs_stay_one_connected_set():
    frame = np.full((H, W), 100, np.uint16)
    frame[16:24, 16:24] += 30  # picture y 40–47 → macro columns 10–11
    frame[16:24, 24:32] += 60  # picture y 32–39 → macro columns 8–9
    steps, _ = run(frame)
    strong = {
        (int(x), int(y)): int(w)
        for (x, y), w in zip(steps.points, steps.weights, strict=True)
        if w > 1
    }
    expected = {(x, y): 60 if y < 10 else 30 for x in (4, 5) for y in (8, 9, 10, 11)}
    assert strong == expected
    mask = np.zeros((H // 4, W // 4), bool)
    mask[steps.points[:, 0], steps.points[:, 1]] = True
    assert ndimage.label(mask)[1] == 1


def test_matches_plain_numpy_chain_on_a_noisy_picture():
    rng = np.random.default_rng(7)
    shape = (256, 320)
    mean = rng.normal(100, 1, shape).astype(np.float32)
    sigma = rng.uniform(1, 3, shape).astype(np.float32)
    frame = np.rint(mean + rng.standard_normal(shape) * sigma)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    frame += 150 * np.exp(-((yy - 120) ** 2 + (xx - 70) ** 2) / (2 * 6.0**2))
    frame[200, 10:300] += 40
    frame[50:60, 250] = 6000  # saturated column
    frame = frame.astype(np.uint16)
    acc = (20, 230, 8, 1 << 20)
    params = pic.ChainParams(acceptance=acc)
    ws = pic.Workspace.for_shape(shape, 4)
    thr = (np.float32(0.6) * sigma).astype(np.float32)
    steps = pic.process(frame, mean, thr, params, ws)
    points, weights, zs, rb = naive.points_and_weights(frame, mean, sigma, acceptance=acc)
    np.testing.assert_array_equal(steps.points, points)
    np.testing.assert_array_equal(steps.weights, weights)
    np.testing.assert_allclose(ws.rb, rb, rtol=1e-5, atol=1e-5)
    assert steps.cmos_integral == pytest.approx(zs.sum(dtype=np.float64), rel=1e-9)
    assert steps.cmos_rms == pytest.approx(zs.std(dtype=np.float64), rel=1e-6)
    assert len(points) > 20
