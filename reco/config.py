"""Reconstruction parameters: one TOML per detector configuration, a frozen dataclass.

The short hash of every parameter (canonical JSON) is part of the reco version, so two
outputs with the same version were made with the same physics choices; each section has
its own hash too, for the products only that section governs (the pedestal maps).
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from cygno.reco.features import FeatureParams
from cygno.reco.idbscan import IDBSCANParams
from cygno.reco.pmt.params import PMTParams
from cygno.storage.lineage import code_version, digest

BUILTIN = ("lngs", "lnf", "mc")


@dataclass(frozen=True)
class PictureParams:
    """Steps 1–6: spark veto, saturation guard, zero suppression, rebin."""

    camera: int = 0
    spark_per_pixel: float = 200.0  # 2 · 100 ADC (twice a typical pedestal)
    spark_offset: float = 9.0e6
    cimax: int = 5000
    nsigma: float = 0.6
    rebin: int = 4
    pixel_pitch_mm: float = 0.152


@dataclass(frozen=True)
class AcceptanceParams:
    """Half-open rectangle [x_min, x_max) × [y_min, y_max) in working-picture pixels,
    clipped to the picture (x = frame row, y = width − 1 − frame column)."""

    x_min: int = 304
    x_max: int = 2054
    y_min: int = 0
    y_max: int = 1 << 20


@dataclass(frozen=True)
class NoiseParams:
    """Step 7: median filter switch and the macro-pixel neighbour filter."""

    median_2x2: bool = True
    border: int = 2
    max_deviation: float = 10.0
    min_neighbors_average: float = 1.2
    min_active_neighbors: int = 3


@dataclass(frozen=True)
class PedestalParams:
    max_pictures: int = 200


@dataclass(frozen=True)
class CalibrationParams:
    """Energy scale; off (sc_energy = −1) unless enabled. Empty map path = no vignetting."""

    enabled: bool = False
    kev_per_count: float = 0.0
    vignetting_map: str = ""


@dataclass(frozen=True)
class RecoConfig:
    name: str = "lngs"
    picture: PictureParams = field(default_factory=PictureParams)
    acceptance: AcceptanceParams = field(default_factory=AcceptanceParams)
    noise: NoiseParams = field(default_factory=NoiseParams)
    pedestal: PedestalParams = field(default_factory=PedestalParams)
    idbscan: IDBSCANParams = field(default_factory=IDBSCANParams)
    features: FeatureParams = field(default_factory=FeatureParams)
    calibration: CalibrationParams = field(default_factory=CalibrationParams)
    pmt: PMTParams = field(default_factory=PMTParams)

    def __post_init__(self) -> None:
        if self.features.rebin != self.picture.rebin:
            raise ValueError("[features] rebin must equal [picture] rebin (set it there only)")
        if self.features.calibration is not None:
            raise ValueError("set the energy scale in [calibration], not in [features]")

    def to_dict(self) -> dict[str, Any]:
        """Every parameter, nested by section (the `name` label is not a parameter)."""
        out = dataclasses.asdict(self)
        out.pop("name")
        return out

    @property
    def hash(self) -> str:
        """Short stable hash of the canonical JSON of all parameters."""
        return digest(self.to_dict())

    def section_hash(self, section: str) -> str:
        """Short stable hash of one section's parameters (e.g. ``"pedestal"``)."""
        return digest(self.to_dict()[section])


_SECTIONS: dict[str, type] = {
    f.name: f.default_factory  # type: ignore[misc]
    for f in dataclasses.fields(RecoConfig)
    if f.name != "name"
}


def _build(cls: type, table: dict[str, Any], where: str) -> Any:
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(table) - set(names)
    if unknown:
        raise ValueError(f"unknown parameter(s) in [{where}]: {sorted(unknown)}")
    values = {}
    for key, value in table.items():
        default = getattr(cls(), key)
        if isinstance(default, tuple) and isinstance(value, list):
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        values[key] = value
    return cls(**values)


def config_from_dict(data: dict[str, Any], name: str = "custom") -> RecoConfig:
    unknown = set(data) - set(_SECTIONS) - {"name"}
    if unknown:
        raise ValueError(f"unknown section(s): {sorted(unknown)}")
    sections = {key: _build(cls, data.get(key, {}), key) for key, cls in _SECTIONS.items()}
    return RecoConfig(name=str(data.get("name", name)), **sections)


def load_config(name_or_path: str | Path = "lngs") -> RecoConfig:
    """A built-in configuration (`lngs`, `lnf`, `mc`) or a TOML file path."""
    if isinstance(name_or_path, str) and name_or_path in BUILTIN:
        text = resources.files("cygno.reco").joinpath(f"configs/{name_or_path}.toml").read_text()
        return config_from_dict(tomllib.loads(text), name=name_or_path)
    path = Path(name_or_path)
    if not path.is_file():
        raise FileNotFoundError(f"no reco configuration {name_or_path!r} (built-in: {BUILTIN})")
    return config_from_dict(tomllib.loads(path.read_text()), name=path.stem)


def reco_version(config: RecoConfig) -> str:
    """``<code version>+<config hash>``: the code and every parameter that made an output."""
    return f"{code_version()}+{config.hash}"
