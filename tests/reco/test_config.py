"""Configurations: defaults of docs/reconstruction.md, stable hash, strict TOML parsing."""

from __future__ import annotations

import dataclasses

import pytest

import cygno
from cygno.reco.config import RecoConfig, load_config, reco_version


@pytest.mark.parametrize(
    ("name", "nsigma", "min_avg"), [("lngs", 0.6, 1.2), ("lnf", 0.8, 1.3), ("mc", 0.9, 1.1)]
)
def test_builtin_defaults(name, nsigma, min_avg):
    cfg = load_config(name)
    assert cfg.name == name
    assert cfg.picture.nsigma == nsigma
    assert cfg.noise.min_neighbors_average == min_avg
    assert cfg.picture.cimax == 5000 and cfg.picture.rebin == 4
    assert (cfg.acceptance.x_min, cfg.acceptance.x_max) == (304, 2304 - 250)
    assert cfg.picture.spark_per_pixel * 2304**2 + cfg.picture.spark_offset == pytest.approx(
        1.0706e9, rel=1e-3
    )
    assert cfg.pedestal.max_pictures == 200
    assert cfg.picture.pixel_pitch_mm == 0.152
    assert not cfg.calibration.enabled
    assert cfg.idbscan.eps == 12 and cfg.idbscan.min_samples == 20
    assert cfg.idbscan.dir_radius == 28 and cfg.idbscan.dir_thickness == 6.5


def test_mc_has_no_vignetting_and_toml_lists_every_field():
    assert load_config("mc").calibration.vignetting_map == ""
    # every parameter of the dataclasses is spelled out in the TOML (nothing implicit)
    import tomllib
    from importlib import resources

    data = tomllib.loads(resources.files("cygno.reco").joinpath("configs/lngs.toml").read_text())
    cfg = load_config("lngs")
    implicit = {"features": {"rebin", "calibration"}}  # taken from [picture] / [calibration]
    for section, values in cfg.to_dict().items():
        assert set(values) - implicit.get(section, set()) == set(data[section]), section


def test_hash_is_stable_and_sensitive():
    a, b = load_config("lngs"), load_config("lngs")
    assert a.hash == b.hash and len(a.hash) == 10
    assert a.hash != load_config("lnf").hash
    changed = dataclasses.replace(a, noise=dataclasses.replace(a.noise, max_deviation=11.0))
    assert changed.hash != a.hash
    renamed = dataclasses.replace(a, name="other")
    assert renamed.hash == a.hash  # the label is not a parameter
    assert reco_version(a) == f"{cygno.__version__}+{a.hash}"


def test_frozen():
    cfg = load_config("lngs")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.picture.nsigma = 1.0  # type: ignore[misc]


def test_custom_file_and_errors(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text("[picture]\nnsigma = 1.5\n[idbscan]\nfourpass_eps = [1.0, 2.0]\n")
    cfg = load_config(path)
    assert cfg.name == "mine" and cfg.picture.nsigma == 1.5
    assert cfg.idbscan.fourpass_eps == (1.0, 2.0)
    assert cfg.picture.cimax == RecoConfig().picture.cimax
    (tmp_path / "bad.toml").write_text("[picture]\nnsgima = 1\n")
    with pytest.raises(ValueError, match="nsgima"):
        load_config(tmp_path / "bad.toml")
    (tmp_path / "bad2.toml").write_text("[features]\nrebin = 2\n")
    with pytest.raises(ValueError, match="rebin"):
        load_config(tmp_path / "bad2.toml")
    with pytest.raises(FileNotFoundError):
        load_config("nonexistent")
