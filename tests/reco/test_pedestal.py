"""Pedestal maps: exact mean / sample std in one pass, from frames and from a MIDAS run."""

from __future__ import annotations

import io

import numpy as np
import pytest

from cygno.reco.pedestal import (
    PedestalMaps,
    choose_pedestal_run,
    compute_pedestal,
    pedestal_from_frames,
)
from cygno.reco.simulate import make_camera
from cygno.reco.simulate.run import simulate_run


def test_mean_and_sample_std_match_numpy():
    rng = np.random.default_rng(0)
    frames = rng.integers(90, 65535, (7, 16, 24)).astype(np.uint16)
    seen = []
    maps = pedestal_from_frames(iter(frames), max_pictures=5, run=3, progress=seen.append)
    assert seen == [1, 2, 3, 4, 5] and maps.n_pictures == 5 and maps.run == 3
    ref = frames[:5].astype(np.float64)
    np.testing.assert_allclose(maps.mean, ref.mean(axis=0), rtol=1e-7)
    np.testing.assert_allclose(maps.sigma, ref.std(axis=0, ddof=1), rtol=1e-6)
    assert maps.mean.dtype == maps.sigma.dtype == np.float32


def test_errors():
    with pytest.raises(ValueError, match="no pictures"):
        pedestal_from_frames(iter([]))
    with pytest.raises(ValueError, match="shape"):
        pedestal_from_frames(iter([np.zeros((4, 4), np.uint16), np.zeros((4, 5), np.uint16)]))


def test_save_load_roundtrip(tmp_path):
    maps = PedestalMaps(
        np.arange(6, dtype=np.float32).reshape(2, 3), np.ones((2, 3), np.float32), None, 9
    )
    buf = io.BytesIO()
    maps.save(buf)
    buf.seek(0)
    back = PedestalMaps.load(buf)
    assert back.run is None and back.n_pictures == 9
    np.testing.assert_array_equal(back.mean, maps.mean)
    maps.save(tmp_path / "p.npz")
    assert PedestalMaps.load(tmp_path / "p.npz").shape == (2, 3)


def test_from_simulated_pedestal_run(tmp_path):
    shape = (128, 128)
    path = tmp_path / "run00042.mid.gz"
    simulate_run(path, 42, 24, kind="pedestal", shape=shape, seed=1, camera_seed=5, pmt=False)
    maps = compute_pedestal(path, max_pictures=20)
    assert maps.run == 42 and maps.n_pictures == 20 and maps.shape == shape
    camera = make_camera(5, shape)
    cold = np.ones(shape, bool)
    cold.flat[camera.hot_index] = False
    # 20 pictures: mean known to sigma/sqrt(20), sigma to ~16 %
    err = np.abs(maps.mean - camera.pedestal)[cold] / camera.sigma[cold]
    assert np.median(err) < 0.3
    ratio = (maps.sigma / camera.sigma)[cold]
    assert 0.95 < np.median(ratio) < 1.05
    with open(path, "rb") as fileobj:
        again = compute_pedestal(fileobj, max_pictures=20)
    np.testing.assert_array_equal(again.mean, maps.mean)


def test_choose_pedestal_run_follows_the_logbook(tmp_path):
    from cygno.storage.daqdb import DaqLogbook

    book = DaqLogbook(f"sqlite:///{tmp_path / 'daq.db'}")
    book.create_schema()
    rows = [
        (10, 1, 0, 400),  # a good pedestal run
        (11, 0, 1, 400),  # data
        (12, 1, 1, 400),  # "pedestal" with HV on: not usable
        (13, 1, 0, 50),  # too short
        (14, 0, 1, 400),
    ]
    for run, ped, hv, n in rows:
        book.insert_run(run_number=run, pedestal_run=ped, HV_STATE=hv, number_of_events=n)
    assert choose_pedestal_run(book, 14) == 10
    assert choose_pedestal_run(book, 9) is None
    book.close()
