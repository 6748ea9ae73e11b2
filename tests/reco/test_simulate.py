"""Simulated pictures and runs: deterministic, consistent with their truth, DAQ-shaped."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from cygno.reco.simulate import (
    Geometry,
    RunTruth,
    electron_recoil,
    fe55_spot,
    make_camera,
    make_tracks,
    nuclear_recoil,
    simulate_picture,
    simulate_run,
    spark_threshold,
)

SMALL = (256, 256)


def _signal(frame: np.ndarray, camera_seed: int = 0) -> np.ndarray:
    """Pedestal-subtracted picture using the camera's exact dark expectation."""
    camera = make_camera(camera_seed, frame.shape)
    dark = camera.pedestal.astype(np.float64).ravel().copy()
    dark[camera.hot_index] += camera.hot_level
    return frame.astype(np.float64) - dark.reshape(frame.shape)


# --- pictures ---------------------------------------------------------------------------


def test_same_seed_same_picture_other_seed_other_picture():
    a, ta = simulate_picture(np.random.default_rng(7), SMALL, kind="mixed")
    b, tb = simulate_picture(np.random.default_rng(7), SMALL, kind="mixed")
    c, _ = simulate_picture(np.random.default_rng(8), SMALL, kind="mixed")
    assert a.dtype == np.uint16 and a.shape == SMALL
    assert np.array_equal(a, b)
    assert [t.to_dict() for t in ta] == [t.to_dict() for t in tb]
    assert not np.array_equal(a, c)


def test_camera_maps_are_realistic_and_fixed_per_camera_seed():
    cam = make_camera(3, SMALL)
    assert cam is make_camera(3, SMALL)
    assert abs(float(cam.pedestal.mean()) - 100.0) < 3.0
    assert cam.pedestal.std() > 0.5  # structure, not a flat level
    assert cam.sigma.min() >= 1.0 and cam.sigma.max() <= 3.0
    assert len(cam.hot_index) >= 4
    assert not np.array_equal(cam.pedestal, make_camera(4, SMALL).pedestal)
    # a track-free picture is pedestal + noise of the map's sigma
    frames = np.stack(
        [
            simulate_picture(np.random.default_rng(i), SMALL, kind="noise", camera_seed=3)[0]
            for i in range(30)
        ]
    ).astype(np.float64)
    residual = frames.mean(axis=0) - cam.pedestal
    residual.ravel()[cam.hot_index] = 0
    assert np.abs(residual).mean() < 0.5
    ratio = frames.std(axis=0) / cam.sigma
    assert 0.85 < float(np.median(ratio)) < 1.15


@pytest.mark.parametrize("kind", ["fe55", "muon", "er", "nr", "mixed"])
def test_tracks_stay_inside_the_acceptance_rows(kind):
    geom = Geometry(SMALL)
    lo, hi = geom.rows
    rng = np.random.default_rng(1)
    for _ in range(20):
        for track in make_tracks(rng, SMALL, kind):
            assert lo <= track.truth.xmin and track.truth.xmax < hi
            assert track.truth.ymin >= 0 and track.truth.ymax <= SMALL[1] - 1


def test_acceptance_rows_of_lime():
    assert Geometry((2304, 2304)).rows == (304, 2304 - 250)


@pytest.mark.parametrize("kind", ["fe55", "er", "nr", "muon"])
def test_light_around_each_track_matches_truth_within_poisson(kind):
    """Pedestal-subtracted integral in a window around a track ≈ its truth light."""
    rng = np.random.default_rng(11)
    pulls = []
    for _ in range(6):
        frame, truths = simulate_picture(rng, SMALL, kind=kind)
        signal = _signal(frame)
        sigma = make_camera(0, SMALL).sigma
        for t in truths:
            pad = 5 * t.sigma_px
            rows = slice(max(0, int(t.xmin - pad)), min(SMALL[0], int(t.xmax + pad) + 2))
            ycols = np.arange(SMALL[1])
            ysel = (ycols >= t.ymin - pad) & (ycols <= t.ymax + pad)
            cols = (SMALL[1] - 1 - ycols)[ysel]
            window = signal[rows][:, cols]
            noise2 = float((sigma[rows][:, cols] ** 2).sum()) + window.size / 12.0
            pulls.append((window.sum() - t.light) / np.sqrt(t.light + noise2))
    pulls = np.asarray(pulls)
    assert len(pulls) >= 6
    assert np.all(np.abs(pulls) < 5), pulls
    assert abs(pulls.mean()) < 1.5


def test_fe55_spot_is_about_one_mm_and_a_few_thousand_adc():
    rng = np.random.default_rng(0)
    spots = [fe55_spot(rng, Geometry(SMALL)).truth for _ in range(200)]
    sigmas_mm = np.array([s.sigma_px for s in spots]) * 0.152
    assert 0.7 < sigmas_mm.mean() < 1.2
    lights = np.array([s.light for s in spots])
    assert 2000 < np.median(lights) < 6000
    assert {round(s.energy_kev, 2) for s in spots} <= {5.9, 6.49}


def test_recoils_have_their_shapes():
    rng = np.random.default_rng(2)
    geom = Geometry((2304, 2304))
    ers = [electron_recoil(rng, geom, energy=40.0).truth for _ in range(20)]
    nrs = [nuclear_recoil(rng, geom, energy=40.0).truth for _ in range(20)]
    assert min(e.length_px for e in ers) > 3 * max(n.length_px for n in nrs)
    assert all(n.light < e.light for n, e in zip(nrs, ers, strict=True))  # quenching
    # curly: the end-to-end distance is well below the path length
    er = electron_recoil(rng, geom, energy=50.0)
    chord = np.hypot(*(er.points[-1] - er.points[0]))
    assert chord < 0.9 * er.truth.length_px


def test_muon_crosses_the_picture():
    _frame, truths = simulate_picture(np.random.default_rng(5), SMALL, kind="muon")
    (muon,) = truths
    assert muon.type == "muon"
    assert muon.ymin == 0 and muon.ymax == SMALL[1] - 1
    assert muon.length_px >= SMALL[1] - 1
    # dE/dx-like: 2.5-3.5 keV/cm, more per projected cm for inclined tracks
    per_cm = muon.energy_kev / (muon.length_px * 0.152 / 10)
    assert 2.0 < per_cm < 10.0


def test_spot_at_truth_x_y_is_at_frame_row_x_column_width_minus_1_minus_y():
    rng = np.random.default_rng(3)
    geom = Geometry(SMALL)
    spot = fe55_spot(rng, geom, light_yield=20000.0, at=(100.0, 40.0))
    frame, (truth,) = simulate_picture(rng, SMALL, tracks=[spot])
    assert (truth.x, truth.y) == (100.0, 40.0)
    signal = np.clip(_signal(frame), 0, None)
    r, c = np.unravel_index(np.argmax(_box(signal, 7)), SMALL)
    assert abs(r - 100) <= 1 and abs(c - (SMALL[1] - 1 - 40)) <= 1
    # the light-weighted centre in production coordinates equals the truth
    picture = signal[:, ::-1]  # production's working picture
    win = picture[70:131, 10:71]
    xs, ys = np.mgrid[70:131, 10:71]
    assert abs((win * xs).sum() / win.sum() - truth.x) < 0.5
    assert abs((win * ys).sum() / win.sum() - truth.y) < 0.5


def _box(image: np.ndarray, half: int) -> np.ndarray:
    """Sum over a (2·half+1)² box at every pixel (cumulative sums; edges padded)."""
    padded = np.pad(image, half + 1)
    c = padded.cumsum(0).cumsum(1)
    k = 2 * half + 1
    return (c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k])[: image.shape[0], : image.shape[1]]


@pytest.mark.parametrize("shape", [(64, 64), SMALL, (2304, 2304)])
def test_spark_pictures_exceed_the_veto_and_others_do_not(shape):
    rng = np.random.default_rng(9)
    spark, truths = simulate_picture(rng, shape, kind="fe55", with_spark=True)
    quiet, _ = simulate_picture(rng, shape, kind="mixed")
    assert truths[-1].type == "spark"
    assert spark.sum(dtype=np.int64) > spark_threshold(shape)
    assert quiet.sum(dtype=np.int64) < spark_threshold(shape)
    assert spark.max() == 65535


def test_real_size_picture_is_lime_shaped():
    frame, truths = simulate_picture(np.random.default_rng(0))
    assert frame.shape == (2304, 2304) and frame.dtype == np.uint16
    assert frame.nbytes == 10_616_832
    assert 1 <= len(truths) <= 3 and all(t.type == "fe55" for t in truths)


def test_pedestal_and_noise_pictures_have_no_tracks():
    for kind in ("pedestal", "noise"):
        _, truths = simulate_picture(np.random.default_rng(0), SMALL, kind=kind)
        assert truths == []
    with pytest.raises(ValueError, match="unknown picture kind"):
        simulate_picture(np.random.default_rng(0), SMALL, kind="neutrinos")


# --- runs -------------------------------------------------------------------------------


def test_same_seed_same_run_bytes(tmp_path):
    a, b, c = (tmp_path / d / "run00007.mid.gz" for d in "abc")  # gzip stores the name
    for path in (a, b, c):
        path.parent.mkdir()
    simulate_run(a, 7, 4, kind="mixed", shape=(64, 64), seed=3, spark_fraction=0.5)
    simulate_run(b, 7, 4, kind="mixed", shape=(64, 64), seed=3, spark_fraction=0.5)
    simulate_run(c, 7, 4, kind="mixed", shape=(64, 64), seed=4, spark_fraction=0.5)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_run_round_trips_through_the_midas_reader(tmp_path):
    from cygno.storage.midas import MidasFile, waveforms

    path = tmp_path / "run01234.mid.gz"
    truth = simulate_run(path, 1234, 23, kind="fe55", shape=SMALL, seed=1)
    assert path.read_bytes()[:2] == b"\x1f\x8b"
    saved = RunTruth.load(tmp_path / "run01234.truth.json")
    assert saved.to_dict() == truth.to_dict()
    assert saved.n_pictures == 23 and saved.shape == SMALL

    with MidasFile(path) as midas:
        assert midas.run_number == 1234
        config = midas.bor_odb["Configurations"]
        for key in ("Exposure", "DRS4Correction", "DigitizerOffset", "DigitizerSamples"):
            assert key in config
        assert "SamplingFrequency" in config
        assert midas.bor_odb["Equipment"]["Trigger"]["Settings"]["nCamera"] == 1
        settings = midas.bor_odb["Equipment"]["Camera"]["Settings"]
        assert (settings["Height"], settings["Width"]) == SMALL
        events = list(midas)
        assert midas.eor_odb["Runinfo"]["Stop time binary"] == int(truth.stop_time)

    ids = [e.header.event_id for e in events]
    assert ids[0] == 0x8000 and ids[-1] == 0x8001
    pictures = [e for e in events if e.header.event_id == 1]
    status = [e for e in events if e.header.event_id == 7]
    assert len(pictures) == 23 and len(status) == 3  # before pictures 0, 10, 20
    assert ids.index(7) < ids.index(1) and ids[1:-1].count(7) == 3
    assert all(e.bank_flags == 0x01 and e.banks["TCAM"].data.dtype == np.float64 for e in status)
    first = pictures[0]
    assert first.bank_flags == 0x11
    assert set(first.banks) == {"CAM0", "TSP0", "FID0", "TIME", "DGH0", "DIG0"}
    assert "TIME" not in pictures[1].banks
    assert int(first.banks["TIME"].data[0]) == int(truth.start_time)
    stamps = [e.header.time_stamp for e in pictures]
    assert stamps[0] == 0
    assert all(300 < b - a < 1000 for a, b in itertools.pairwise(stamps))
    assert [e.header.serial_number for e in pictures] == list(range(23))

    for event, pic in zip(pictures, truth.pictures, strict=True):
        image = event.picture()
        assert image.shape == SMALL and image.dtype == np.uint16
        signal = _signal(image)
        for t in pic.tracks:  # the spot's light is where the truth says
            r, c = round(t.x), SMALL[1] - 1 - round(t.y)
            assert signal[r - 2 : r + 3, c - 2 : c + 3].mean() > 5

    boards = waveforms(pictures[0])
    assert [b.model for b in boards] == [1720, 1742]
    assert boards[0].ntriggers == len(truth.pictures[0].tracks)
    wave = boards[0].waveforms[0, :4].astype(float)
    baseline = np.median(wave[:, :500], axis=1)
    depth = baseline - wave.min(axis=1)
    assert np.all(depth > 10)  # negative-going pulses on the four PMTs
    trigger_at = int(0.2 * boards[0].nsamples)
    assert np.all(np.abs(wave.argmin(axis=1) - trigger_at) < 200)  # timed with the track
    assert np.all(np.abs(boards[0].waveforms[0, 4:].astype(float) - 3700).max() < 20)


def test_pedestal_run_has_no_tracks_and_flat_waveforms(tmp_path):
    from cygno.storage.midas import MidasFile, waveforms

    path = tmp_path / "run00010.mid.gz"
    truth = simulate_run(path, 10, 12, kind="pedestal", shape=(64, 64), spark_fraction=1.0)
    assert truth.pedestal and all(not p.tracks and not p.spark for p in truth.pictures)
    with MidasFile(path) as midas:
        assert midas.bor_odb["Configurations"]["Pedestal run"] is True
        for event in midas:
            if event.header.event_id == 1:
                for board in waveforms(event):
                    assert board.ntriggers == 1
                    assert np.ptp(board.waveforms.astype(int)) < 40


def test_spark_fraction_gives_vetoed_pictures(tmp_path):
    from cygno.storage.midas import MidasFile

    path = tmp_path / "run00011.mid.gz"
    truth = simulate_run(path, 11, 20, kind="muon", shape=(64, 64), spark_fraction=0.3, seed=2)
    flagged = [p.spark for p in truth.pictures]
    assert 0 < sum(flagged) < 20
    with MidasFile(path) as midas:
        sums = [e.picture().sum(dtype=np.int64) for e in midas if e.header.event_id == 1]
    vetoed = [s > spark_threshold((64, 64)) for s in sums]
    assert vetoed == flagged


def test_unknown_run_kind_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown run kind"):
        simulate_run(tmp_path / "x.mid.gz", 1, 1, kind="wimps", shape=(64, 64))


# --- upload + logbook -------------------------------------------------------------------


def _deliver(store, logbook, **options):
    from cygno.reco.simulate import simulate_and_upload

    logbook.create_schema()
    return simulate_and_upload(
        store, logbook, shape=(64, 64), pedestal_events=100, seed=4, first_run=41, **options
    )


def _check_delivery(store, logbook, delivered, tag="LNGS"):
    from cygno.storage.checksum import checksums_of
    from cygno.storage.midas import MidasFile

    assert [r.run_number for r in delivered] == [41, 42, 43]
    assert [r.truth.kind for r in delivered] == ["pedestal", "fe55", "fe55"]
    expected = {
        f"raw/{tag}/run{n:05d}{ext}" for n in (41, 42, 43) for ext in (".mid.gz", ".truth.json")
    }
    assert set(store.list(f"raw/{tag}/")) == expected
    for run in delivered:
        assert run.key == f"raw/{tag}/run{run.run_number:05d}.mid.gz"
        with store.open(run.key) as f:
            sums = checksums_of(f)
        assert sums.md5 == run.checksums.md5 and sums.size == run.checksums.size
        with store.open(run.key) as f, MidasFile(f) as midas:
            assert midas.run_number == run.run_number
            assert sum(e.header.event_id == 1 for e in midas) == run.truth.n_pictures
        saved = RunTruth.from_dict(json.loads(store.get_bytes(run.truth_key)))
        assert saved.to_dict() == run.truth.to_dict()

        row = logbook.get(run.run_number)
        assert row["number_of_events"] == run.truth.n_pictures
        assert row["file_size"] == run.checksums.size
        assert row["file_checksum"] == run.checksums.md5
        assert row["file_s3_tag"] == tag
        assert row["exposure_sec"] == pytest.approx(0.3)
        assert row["stop_time"] > row["start_time"]
        assert row["storage_cloud_status"] == 1
        pedestal = run.truth.kind == "pedestal"
        assert row["pedestal_run"] == int(pedestal)
        assert row["HV_STATE"] == (0 if pedestal else 1)
        assert (row["GEM1_V"] == 0) == pedestal
    assert logbook.pedestal_for(43) == 41  # the DAQ rule finds the simulated pedestal run


def test_simulate_and_upload_to_file_store_and_sqlite_logbook(tmp_path):
    from cygno.storage.daqdb import DaqLogbook
    from cygno.storage.objectstore import ObjectStore

    store = ObjectStore((tmp_path / "store").as_uri())
    logbook = DaqLogbook(f"sqlite:///{tmp_path / 'daq.db'}")
    seen: list[tuple[int, int, int]] = []
    delivered = _deliver(store, logbook, runs=2, events=3, progress=lambda *a: seen.append(a))
    _check_delivery(store, logbook, delivered)
    assert seen[-1] == (43, 3, 3) and (41, 100, 100) in seen
    assert delivered[0].truth.camera_seed == delivered[2].truth.camera_seed  # one camera


def test_simulate_and_upload_to_s3(s3_server, tmp_path):
    from cygno.storage.daqdb import DaqLogbook
    from cygno.storage.objectstore import ObjectStore

    store = ObjectStore(f"s3://{s3_server.new_bucket()}", s3_server.storage_options())
    logbook = DaqLogbook(f"sqlite:///{tmp_path / 'daq.db'}")
    _check_delivery(store, logbook, _deliver(store, logbook, runs=2, events=2, tag="LNF"), "LNF")


def test_cygno_simulate_command(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from cygno.cli import _register, app
    from cygno.resources import store_for
    from cygno.settings import get_settings
    from cygno.storage.daqdb import DaqLogbook

    monkeypatch.setenv("CYGNO_DATA_DIR", str(tmp_path / "data"))
    for name in ("STORE_URL", "DAQDB_URL"):
        monkeypatch.delenv(f"CYGNO_{name}", raising=False)
    get_settings.cache_clear()
    _register()
    try:
        args = ["simulate", "--runs", "1", "--events", "2", "--shape", "64x64", "--kind", "muon"]
        result = CliRunner().invoke(app, [*args, "--pedestal-events", "3", "--tag", "MAN"])
        assert result.exit_code == 0, result.output
        again = CliRunner().invoke(app, [*args, "--no-pedestal", "--tag", "MAN"])
        assert again.exit_code == 0, again.output
        settings = get_settings()
        store = store_for(settings)
        assert store.exists("raw/MAN/run00001.mid.gz") and store.exists("raw/MAN/run00002.mid.gz")
        assert store.exists("raw/MAN/run00003.mid.gz")  # continued after the logbook's last run
        logbook = DaqLogbook(settings.daqdb_url)
        assert logbook.get(1)["pedestal_run"] == 1 and logbook.get(3)["pedestal_run"] == 0
        assert "pedestal" in result.output and "pedestal" not in again.output
        assert logbook.get(3)["file_checksum"] in again.output
        bad = CliRunner().invoke(app, ["simulate", "--shape", "1x2x3"])
        assert bad.exit_code != 0
    finally:
        get_settings.cache_clear()
