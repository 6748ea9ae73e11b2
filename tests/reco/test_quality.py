"""Quality monitoring on real ROOT files written with the reco writer (uproot TTrees)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cygno.reco import quality
from cygno.reco.pedestal import PedestalMaps
from cygno.reco.rootio import EVENT_BRANCHES, RecoWriter
from cygno.storage.objectstore import ObjectStore

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TRUE_PEAK = 3000.0
TRUE_SIGMA = 450.0
FIELDS = {
    "sc_integral": "float32",
    "sc_length": "float32",
    "sc_width": "float32",
    "sc_tracklike": "int32",
}


def write_fe_run(
    path: Path,
    run: int,
    *,
    peak: float = TRUE_PEAK,
    pictures: int = 400,
    spots_per_picture: float = 6.0,
    seed: int = 7,
) -> Path:
    """A ⁵⁵Fe-like run: Gaussian spot integrals, soft noise clusters, a few muons, one spark."""
    import awkward as ak

    rng = np.random.default_rng(seed)
    spots = rng.poisson(spots_per_picture, pictures)
    noise = rng.poisson(2.0, pictures)
    muons = rng.binomial(1, 0.1, pictures)
    counts = spots + noise + muons
    integral, length, width, tracklike = [], [], [], []
    for n_spot, n_noise, n_muon in zip(spots, noise, muons, strict=True):
        s_len = rng.normal(20, 3, n_spot).clip(5)
        n_len = rng.uniform(3, 15, n_noise)
        m_len = rng.uniform(800, 2000, n_muon)
        integral.append(
            np.concatenate(
                [
                    rng.normal(peak, TRUE_SIGMA * peak / TRUE_PEAK, n_spot),
                    150 + rng.exponential(300, n_noise),
                    rng.uniform(5e4, 3e5, n_muon),
                ]
            )
        )
        length.append(np.concatenate([s_len, n_len, m_len]))
        width.append(
            np.concatenate(
                [s_len * rng.uniform(0.7, 1.0, n_spot), n_len * 0.8, rng.uniform(8, 15, n_muon)]
            )
        )
        tracklike.append(np.r_[np.zeros(n_spot + n_noise), np.ones(n_muon)])

    def jagged(parts: list[np.ndarray], dtype: str) -> ak.Array:
        return ak.unflatten(np.concatenate(parts).astype(dtype), counts)

    cmos = rng.normal(5e5, 2e4, pictures)
    cmos[pictures // 2] = 5e8  # one spark
    data = {name: np.zeros(pictures, dtype=dtype) for name, dtype in EVENT_BRANCHES.items()}
    data.update(
        run=np.full(pictures, run, np.int32),
        event=np.arange(pictures, dtype=np.int32),
        cmos_integral=cmos,
        sc=ak.zip(
            {
                "integral": jagged(integral, "float32"),
                "length": jagged(length, "float32"),
                "width": jagged(width, "float32"),
                "tracklike": jagged(tracklike, "int32"),
            }
        ),
    )
    with RecoWriter(path, {"reco_version": "test"}, cluster_fields=FIELDS) as writer:
        writer.extend_arrays(data)
    return path


def pedestal(noise: float = 2.0, seed: int = 3) -> PedestalMaps:
    rng = np.random.default_rng(seed)
    return PedestalMaps(
        mean=rng.normal(100, 1.5, (128, 128)).astype(np.float32),
        sigma=rng.normal(noise, 0.3, (128, 128)).clip(0.1).astype(np.float32),
        run=1000,
        n_pictures=100,
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("reco")
    return {
        "reference": write_fe_run(base / "ref.root", 1200),
        "shifted": write_fe_run(base / "shifted.root", 1201, peak=1.25 * TRUE_PEAK, seed=8),
        "mild": write_fe_run(base / "mild.root", 1202, peak=1.08 * TRUE_PEAK, seed=9),
    }


@pytest.fixture
def store(tmp_path) -> ObjectStore:
    return ObjectStore((tmp_path / "store").as_uri())


REF_PREFIX = "quality/0.1.0+abc/LNGS/run01200/"


@pytest.fixture(scope="module")
def ref_store(files, tmp_path_factory) -> tuple[ObjectStore, quality.QualityReport]:
    """The reference run's quality outputs, written once for the module."""
    store = ObjectStore(tmp_path_factory.mktemp("ref-store").as_uri())
    report = quality.run_quality(files["reference"], store, REF_PREFIX, pedestal=pedestal())
    return store, report


@pytest.fixture
def reference(ref_store) -> quality.Reference:
    return quality.load_reference(ref_store[0], REF_PREFIX)


def test_read_reco_from_path_and_bytes(files):
    from_path = quality.read_reco(files["reference"])
    from_bytes = quality.read_reco(files["reference"].read_bytes())
    assert from_path.run == 1200
    assert from_path.pictures == 400
    assert len(from_path.sc_integral) == from_path.n_clusters.sum() > 2000
    np.testing.assert_array_equal(from_path.sc_integral, from_bytes.sc_integral)


def test_light_yield_fit_recovers_the_peak(files):
    data = quality.read_reco(files["reference"])
    fit = quality.fit_light_yield(quality.spot_integrals(data))
    assert fit is not None
    assert fit.peak == pytest.approx(TRUE_PEAK, rel=0.02)
    assert fit.sigma == pytest.approx(TRUE_SIGMA, rel=0.10)
    assert 0 < fit.peak_err < 0.01 * fit.peak
    assert fit.per_kev == pytest.approx(fit.peak / 5.9)
    assert fit.per_kev_err == pytest.approx(fit.peak_err / 5.9)
    assert fit.chi2_ndf < 3


def test_light_yield_none_without_a_peak():
    rng = np.random.default_rng(0)
    assert quality.fit_light_yield(rng.uniform(100, 200, 10)) is None  # too few clusters
    credible = []
    for seed in range(10):  # falling noise spectra, plain and cut by a threshold
        rng = np.random.default_rng(seed)
        for noise in (rng.exponential(300, 3000), 150 + rng.exponential(300, 3000)):
            fit = quality.fit_light_yield(noise)
            credible.append(fit is not None and fit.problem is None)
    assert sum(credible) <= 1, credible  # why run_quality wants fe55 when it is known


def noise_run(pictures: int = 200, seed: int = 2) -> quality.RecoArrays:
    rng = np.random.default_rng(seed)
    counts = rng.poisson(5, pictures)
    n = int(counts.sum())
    length = rng.uniform(3, 15, n)
    return quality.RecoArrays(
        run=1300,
        event=np.arange(pictures, dtype=float),
        n_clusters=counts,
        cmos_integral=rng.normal(5e5, 2e4, pictures),
        sc_integral=150 + rng.exponential(300, n),
        sc_length=length,
        sc_width=0.8 * length,
        sc_tracklike=np.zeros(n),
    )


def test_fe55_from_logbook():
    assert quality.fe55_from_logbook({"source_type": "Fe55"}) is True
    assert quality.fe55_from_logbook({"source_type": "55-Fe"}) is True
    assert quality.fe55_from_logbook({"source_type": "none"}) is False
    assert quality.fe55_from_logbook({"source_type": ""}) is None
    assert quality.fe55_from_logbook(None) is None


def test_fe55_expected_but_missing_is_a_warning(store):
    auto = quality.run_quality(noise_run(), store, "auto/")
    assert auto.summary["light_yield"] is None
    assert auto.flag == "good" and "fe55_peak" not in auto.histograms
    expected = quality.run_quality(noise_run(), store, "fe/", fe55=True)
    assert expected.flag == "warning"
    assert expected.summary["light_yield"] is None
    assert expected.reasons[0].startswith("no ⁵⁵Fe light yield: ")


def test_histogram_json_round_trip(files):
    data = quality.read_reco(files["reference"])
    histograms = quality.build_histograms(data, pedestal())
    assert set(histograms) == {
        "sc_integral",
        "sc_length_vs_integral",
        "clusters_per_picture",
        "cmos_integral",
        "pedestal_mean",
        "pedestal_noise",
    }
    for h in histograms.values():
        doc = json.loads(json.dumps(quality.histogram_to_json(h)))
        back = quality.histogram_from_json(doc)
        np.testing.assert_array_equal(back.values(), h.values())
        for a, b in zip(back.axes, h.axes, strict=True):
            np.testing.assert_allclose(a.edges, b.edges)
    spectrum = quality.histogram_to_json(histograms["sc_integral"])
    assert spectrum["axes"][0]["log"] is True
    assert spectrum["entries"] == len(data.sc_integral)
    assert histograms["clusters_per_picture"].values().sum() == 400


def test_pedestal_monitor_kept_as_json_is_the_one_made_from_the_maps():
    maps = pedestal()
    maps.mean[0, :3] = [np.nan, -5.0, 500.0]  # unknown, below and above the range
    made = quality.pedestal_monitor(maps)
    kept = quality.PedestalMonitor.from_json(json.loads(json.dumps(made.to_json())))
    assert kept.histograms.keys() == made.histograms.keys() == {"pedestal_mean", "pedestal_noise"}
    for name, h in made.histograms.items():
        assert quality.histogram_to_json(kept.histograms[name]) == quality.histogram_to_json(h)
    assert quality.histogram_to_json(kept.histograms["pedestal_mean"])["underflow"] == 1
    assert (kept.pedestal_mean, kept.noise_mean) == (made.pedestal_mean, made.noise_mean)
    assert quality.summarize(noise_run(), kept) == quality.summarize(noise_run(), maps)


def test_statistics_on_known_inputs():
    a = np.array([10, 20, 30, 40])
    assert quality.chi2_ndf(a, a) == (0.0, 3)
    assert quality.chi2_ndf(a, 2 * a)[0] == pytest.approx(0.0)  # shapes, not totals
    assert quality.ks_distance(a, a)[0] == 0.0
    assert quality.ks_distance([10, 0], [0, 10])[0] == 1.0
    chi2, _ = quality.chi2_ndf(np.array([100, 0]), np.array([0, 100]))
    assert chi2 > 100


def test_identical_reference_is_good(files, store, reference, ref_store):
    assert reference.run == 1200
    assert set(reference.histograms) == set(ref_store[1].histograms)
    report = quality.run_quality(
        files["reference"],
        store,
        "quality/v/LNGS/run01200-again/",
        pedestal=pedestal(),
        reference=reference,
        extra={"tag": "LNGS"},
    )
    assert report.flag == "good", report.reasons
    assert report.reasons == ["all checks passed against reference run 1200"]
    assert report.summary["tag"] == "LNGS"
    assert report.summary["flag"] == "good"
    assert report.reference_run == 1200
    compared = {c.name for c in report.comparisons}
    assert {"sc_integral", "clusters_per_picture", "pedestal_noise"} <= compared
    assert all(c.chi2_ndf == pytest.approx(0.0) for c in report.comparisons)
    assert report.summary["light_yield"] == pytest.approx(TRUE_PEAK / 5.9, rel=0.02)
    assert report.summary["pictures"] == 400
    assert report.summary["sparks"] == 1
    assert report.summary["noise_mean"] == pytest.approx(2.0, rel=0.05)


def test_outputs_are_written(ref_store):
    store, report = ref_store
    keys = set(store.list(REF_PREFIX))
    assert set(report.files.values()) == keys
    pngs = [key for key in keys if key.endswith(".png")]
    assert len(pngs) == len(report.histograms) + 1  # + the cmos trace
    for key in pngs:
        data = store.get_bytes(key)
        assert data.startswith(PNG_MAGIC) and len(data) > 5000, key
    saved = json.loads(store.get_bytes(REF_PREFIX + "summary.json"))
    assert saved["flag"] == report.flag == "good"
    assert saved["reasons"] == ["all checks passed (no reference run)"]
    assert saved["summary"]["clusters"] == report.summary["clusters"]
    assert "fe55_peak" in saved["histograms"]  # auto mode found the peak


def pngs_in(store: ObjectStore, prefix: str) -> list[str]:
    return [key for key in store.list(prefix) if key.endswith(".png")]


def test_plots_left_for_later_are_drawn_on_request_as_they_would_have_been(files, store, reference):
    later, at_once = "quality/v/LNGS/run01201/", "at-once/"
    options = {"pedestal": pedestal(), "reference": reference, "fe55": True}
    report = quality.run_quality(files["shifted"], store, later, plots=False, **options)
    drawn = quality.run_quality(files["shifted"], store, at_once, **options)
    assert pngs_in(store, later) == []
    assert report.files.keys() == drawn.files.keys()
    names = [name for name in report.files if name.endswith(".png")]
    assert len(names) == len(report.histograms) + 1 and "fe55_peak.png" in names
    for name in names:
        png = quality.plot_on_request(store, report.files[name])
        assert png is not None and png.startswith(PNG_MAGIC), name
        assert png == store.get_bytes(report.files[name]) == store.get_bytes(drawn.files[name])
    assert quality.plot_on_request(store, later + "no_such_plot.png") is None
    assert quality.plot_on_request(store, "quality/v/LNGS/run09999/sc_integral.png") is None

    old = store.get_bytes(report.files["sc_integral.png"])
    quality.run_quality(files["mild"], store, later, plots=False, **options)  # judged again
    assert pngs_in(store, later) == []  # drawn from the replaced data: gone
    assert quality.plot_on_request(store, report.files["sc_integral.png"]) != old


def test_shifted_run_is_bad_with_reasons(files, store, reference):
    report = quality.run_quality(
        files["shifted"], store, "shifted/", pedestal=pedestal(noise=2.9), reference=reference
    )
    assert report.flag == "bad"
    assert any(r.startswith("sc_integral: differs from reference") for r in report.reasons)
    assert any(r.startswith("light_yield") and "+25" in r for r in report.reasons), report.reasons
    assert any(r.startswith("noise_mean") for r in report.reasons)
    integral = next(c for c in report.comparisons if c.name == "sc_integral")
    assert integral.flag == "bad" and integral.chi2_ndf > 10
    assert integral.ks_distance > 0.1


def test_mild_shift_is_a_warning_with_configurable_thresholds(files, store, reference):
    lenient = quality.Thresholds(chi2_warning=1e6, chi2_bad=1e7)
    report = quality.run_quality(
        files["mild"],
        store,
        "mild/",
        pedestal=pedestal(),
        reference=reference,
        thresholds=lenient,
    )
    assert report.flag == "warning", report.reasons
    assert len(report.reasons) == 1 and report.reasons[0].startswith("light_yield")
    strict = quality.run_quality(
        files["mild"], store, "mild2/", pedestal=pedestal(), reference=reference
    )
    assert strict.flag != "good"  # default χ² thresholds see the 8 % shift in the spectrum
    assert any(r.startswith("sc_integral: differs") for r in strict.reasons)


def test_ks_method_flags_the_shift(files, store, reference):
    ks = quality.Thresholds(method="ks", ks_warning=0.05, ks_bad=0.5)
    report = quality.run_quality(
        files["shifted"], store, "ks/", reference=reference, thresholds=ks, fe55=False
    )
    assert report.summary["light_yield"] is None
    assert "reference has a ⁵⁵Fe light yield, this run has none" in report.reasons
    integral = next(c for c in report.comparisons if c.name == "sc_integral")
    assert integral.flag == "warning"
    assert "Kolmogorov distance" in integral.reason


def test_empty_run_is_bad(tmp_path, store):
    path = tmp_path / "empty.root"
    with RecoWriter(path, {}, cluster_fields=FIELDS):
        pass
    report = quality.run_quality(path, store, "empty/")
    assert report.flag == "bad"
    assert "no pictures in the reco file" in report.reasons


def test_trends_and_markdown(ref_store):
    store, report = ref_store
    summaries = [
        report.summary,
        {**report.summary, "run": 1201, "flag": "warning", "light_yield": 480.0},
        {"run": 1150, "flag": "bad", "noise_mean": 2.5},  # a sparse row
    ]
    prefix = quality.trend_prefix("0.1.0+abc", "LNGS")
    written = quality.write_trends(summaries, store, prefix)
    assert prefix == "quality/trends/0.1.0+abc/LNGS"
    for name in ("light_yield.png", "clusters_per_picture.png", "noise.png"):
        assert store.get_bytes(written[name]).startswith(PNG_MAGIC)
    rows = json.loads(store.get_bytes(written["summaries.json"]))
    assert [r["run"] for r in rows] == [1150, 1200, 1201]
    drawn = {name: store.get_bytes(key) for name, key in written.items() if name.endswith(".png")}
    later = quality.write_trends(summaries, store, prefix, plots=False)
    assert later.keys() == written.keys() and pngs_in(store, prefix) == []
    for name, png in drawn.items():
        assert quality.plot_on_request(store, later[name]) == png

    page = quality.trend_table_html(rows, "/files/" + prefix)
    assert page.count("<tr") == 4
    assert f'src="/files/{prefix}/light_yield.png"' in page

    text = quality.report_markdown(report, "http://example.org:4300/")
    assert "# Quality of run 1200: **good**" in text
    link = f"(http://example.org:4300/files/{report.files['sc_integral.png']})"
    assert f"![sc_integral.png]{link}" in text


@pytest.mark.slow
def test_light_yield_of_a_simulated_reconstructed_run(tmp_path, store):
    """The whole chain: simulated MIDAS run → reconstruction → quality (~25 s)."""
    from cygno.reco.config import load_config
    from cygno.reco.pedestal import compute_pedestal
    from cygno.reco.reconstruct import reconstruct_file
    from cygno.reco.simulate.run import simulate_run

    simulate_run(tmp_path / "ped.mid.gz", 100, 20, kind="pedestal", seed=1, pmt=False)
    truth = simulate_run(tmp_path / "fe.mid.gz", 101, 100, kind="fe55", seed=3, pmt=False)
    maps = compute_pedestal(tmp_path / "ped.mid.gz")
    reconstruct_file(tmp_path / "fe.mid.gz", maps, load_config("mc"), out_path=tmp_path / "r.root")
    report = quality.run_quality(tmp_path / "r.root", store, "sim/", pedestal=maps, fe55=True)
    assert report.flag == "good", report.reasons
    assert report.summary["run"] == 101
    assert report.summary["light_yield"] == pytest.approx(truth.light_yield, rel=0.05)
    assert report.summary["noise_mean"] == pytest.approx(float(maps.sigma.mean()))


def _narrow_run(n_pictures: int = 50, most: int = 5) -> quality.RecoArrays:
    """Pictures of 0..most clusters whose integrals all lie within 3000–3600 ADC."""
    rng = np.random.default_rng(7)
    n_clusters = rng.integers(0, most + 1, n_pictures)
    total = int(n_clusters.sum())
    return quality.RecoArrays(
        run=5,
        event=np.arange(n_pictures, dtype=float),
        n_clusters=n_clusters,
        cmos_integral=rng.uniform(2e6, 3e6, n_pictures),
        sc_integral=rng.uniform(3000, 3600, total),
        sc_length=rng.uniform(20, 40, total),
        sc_width=rng.uniform(5, 10, total),
        sc_tracklike=None,
        pmt=None,
    )


def test_histogram_ranges_follow_the_data():
    data = _narrow_run()
    histograms = quality.build_histograms(data)

    spectrum = histograms["sc_integral"]
    lo, hi = spectrum.axes[0].edges[[0, -1]]
    assert lo <= 3000 and hi >= 3600 and hi / lo < 2.5  # not 10²–10⁷
    assert np.count_nonzero(spectrum.values()) > 10  # spread over bins, not one
    per_picture = histograms["clusters_per_picture"].axes[0]
    assert per_picture.edges[0] == 0 and per_picture.edges[-1] <= 8  # data in 0–5, not 0–100
    assert histograms["clusters_per_picture"].sum() == len(data.n_clusters)


def test_a_reference_lends_its_binning_so_the_runs_compare():
    reference = quality.build_histograms(_narrow_run(most=3))
    run = quality.build_histograms(_narrow_run(most=5), like=reference)
    for name, h in run.items():
        for mine, theirs in zip(h.axes, reference[name].axes, strict=True):
            np.testing.assert_allclose(mine.edges, theirs.edges)
        assert quality.compare_histograms(h, reference[name]) is not None
