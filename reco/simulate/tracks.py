"""Tracks of known energy as light-weighted deposit points in working-picture coordinates.

Coordinates follow production (docs/reconstruction.md "Coordinates"): the working picture is
``frame[:, ::-1]``, ``x`` is the frame row and ``y = width − 1 − column``. Pixel ``i``
spans ``[i − 0.5, i + 0.5)``, so a truth position equals the index of the pixel at its
centre and compares directly with reconstructed ``sc_xmean``/``sc_ymean``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

PIXEL_MM = 0.152
"""LIME pixel pitch at the GEM plane, mm."""

LIGHT_YIELD = 600.0
"""Default light yield, ADC counts per keV (a 5.9 keV spot ≈ 3540 ADC)."""

FE55_LINES = ((5.90, 0.88), (6.49, 0.12))  # Mn Kα, Kβ (keV, branching)
DRIFT_MAX_CM = 50.0
DIFFUSION_MM = (0.30, 0.14)  # sigma0 (mm), transverse diffusion (mm / sqrt(cm))


@dataclass(frozen=True)
class Geometry:
    """Picture shape and the LIME acceptance rows scaled to it."""

    shape: tuple[int, int]

    @property
    def rows(self) -> tuple[int, int]:
        """Acceptance rows ``[lo, hi)`` of the working picture (LIME: 304, 2054)."""
        height = self.shape[0]
        return round(304 * height / 2304), height - round(250 * height / 2304)

    @property
    def scale(self) -> float:
        return min(self.shape) / 2304


@dataclass
class TruthTrack:
    """What was put into a picture. Positions in working-picture pixels (production's).

    ``light`` is the expected integral in ADC counts above pedestal (energy × light
    yield × quenching); the picture holds a Poisson draw of it, spread by diffusion.
    ``x, y`` are the light-weighted centre; the box and ``length_px`` describe the
    undiffused deposit; ``sigma_px`` is the diffusion sigma.
    """

    type: str
    energy_kev: float | None
    light: float
    x: float
    y: float
    xmin: float
    xmax: float
    ymin: float
    ymax: float
    length_px: float
    sigma_px: float
    drift_cm: float | None = None

    def to_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> TruthTrack:
        return cls(**data)


@dataclass
class Track:
    """A track to draw: deposit points (n, 2) [x, y], their light fractions, diffusion."""

    truth: TruthTrack
    points: np.ndarray
    weights: np.ndarray


def _diffusion(rng: np.random.Generator, extra_mm: float = 0.0) -> tuple[float, float]:
    """Drift distance (cm) and the resulting Gaussian spread (px)."""
    drift = float(rng.uniform(0.0, DRIFT_MAX_CM))
    sigma0, coeff = DIFFUSION_MM
    sigma_mm = np.sqrt(sigma0**2 + coeff**2 * drift + extra_mm**2)
    return drift, float(sigma_mm / PIXEL_MM)


def _make(
    kind: str,
    energy: float | None,
    light: float,
    points: np.ndarray,
    weights: np.ndarray,
    sigma: float,
    drift: float | None,
) -> Track:
    weights = np.asarray(weights, dtype=np.float64)
    weights = weights / weights.sum()
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    centre = weights @ points
    steps = np.diff(points, axis=0)
    length = float(np.hypot(steps[:, 0], steps[:, 1]).sum()) if len(points) > 1 else 0.0
    truth = TruthTrack(
        type=kind,
        energy_kev=energy,
        light=float(light),
        x=float(centre[0]),
        y=float(centre[1]),
        xmin=float(points[:, 0].min()),
        xmax=float(points[:, 0].max()),
        ymin=float(points[:, 1].min()),
        ymax=float(points[:, 1].max()),
        length_px=length,
        sigma_px=float(sigma),
        drift_cm=drift,
    )
    return Track(truth, points, weights)


def _place(rng: np.random.Generator, geom: Geometry, margin: float) -> np.ndarray:
    lo, hi = geom.rows
    width = geom.shape[1]
    margin_x = min(margin, (hi - lo) / 2 - 1)
    margin_y = min(margin, width / 2 - 1)
    return np.array(
        [rng.uniform(lo + margin_x, hi - margin_x), rng.uniform(margin_y, width - margin_y)]
    )


def _walk(angle: np.ndarray, step: float) -> np.ndarray:
    """Points of a walk of equal steps in the given directions, centred on the origin."""
    path = np.cumsum(np.column_stack([np.cos(angle), np.sin(angle)]) * step, axis=0)
    return path - path.mean(axis=0)


def fe55_spot(
    rng: np.random.Generator,
    geom: Geometry,
    light_yield: float = LIGHT_YIELD,
    at: tuple[float, float] | None = None,
) -> Track:
    """A ⁵⁵Fe X-ray conversion: a round spot of ~1 mm sigma (diffusion ⊕ electron range)."""
    energies, probs = zip(*FE55_LINES, strict=True)
    energy = float(rng.choice(energies, p=probs))
    drift, sigma = _diffusion(rng, extra_mm=0.45)
    centre = np.asarray(at, dtype=float) if at is not None else _place(rng, geom, 4 * sigma)
    return _make("fe55", energy, energy * light_yield, centre, [1.0], sigma, drift)


def electron_recoil(
    rng: np.random.Generator,
    geom: Geometry,
    light_yield: float = LIGHT_YIELD,
    energy: float | None = None,
) -> Track:
    """A curly electron track: a random walk that curls more as the electron slows down."""
    energy = float(rng.uniform(10.0, 60.0) if energy is None else energy)
    range_px = min(2.5 * (energy / 10.0) ** 1.7 / PIXEL_MM, 0.3 * min(geom.shape))
    n = max(8, int(range_px / 1.5))
    progress = np.arange(n) / n
    bend = rng.normal(0.0, 1.0, n) * (0.12 + 0.6 * progress**2)
    angle = rng.uniform(0, 2 * np.pi) + np.cumsum(bend)
    path = _walk(angle, range_px / n)
    drift, sigma = _diffusion(rng)
    half = np.abs(path).max(axis=0)
    centre = _place(rng, geom, float(half.max()) + 4 * sigma)
    weights = 1.0 / np.sqrt(1.0 - progress + 0.05)  # more light towards the stopping end
    return _make("er", energy, energy * light_yield, path + centre, weights, sigma, drift)


def nuclear_recoil(
    rng: np.random.Generator,
    geom: Geometry,
    light_yield: float = LIGHT_YIELD,
    energy: float | None = None,
) -> Track:
    """A short, dense nuclear recoil; light is quenched (fraction grows with energy)."""
    energy = float(rng.uniform(5.0, 60.0) if energy is None else energy)
    quenching = 0.3 + 0.25 * min(energy, 100.0) / 100.0
    range_px = max(2.0, 0.06 * energy / PIXEL_MM)
    n = max(4, int(range_px))
    progress = np.arange(n) / n
    angle = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0.0, 0.05, n))
    path = _walk(angle, range_px / n)
    drift, sigma = _diffusion(rng)
    centre = _place(rng, geom, range_px + 4 * sigma)
    weights = 1.2 - progress  # recoils lose most energy at the start
    light = energy * quenching * light_yield
    return _make("nr", energy, light, path + centre, weights, sigma, drift)


def cosmic_muon(
    rng: np.random.Generator, geom: Geometry, light_yield: float = LIGHT_YIELD
) -> Track:
    """A straight muon crossing the picture edge to edge inside the acceptance rows.

    Light per unit of projected length follows a minimum-ionising dE/dx of 2.5–3.5 keV/cm
    divided by the sine of the track's angle to the drift axis (0.4–1), with Landau-like
    fluctuations per 1 mm segment.
    """
    lo, hi = geom.rows
    width = geom.shape[1]
    x0, x1 = rng.uniform(lo + 10 * geom.scale, hi - 10 * geom.scale, 2)
    n = max(2, width)
    t = np.linspace(0.0, 1.0, n)
    points = np.column_stack([x0 + (x1 - x0) * t, t * (width - 1)])
    seg_len_mm = np.hypot(x1 - x0, width - 1) * PIXEL_MM / (n - 1)
    dedx = rng.uniform(2.5, 3.5) / rng.uniform(0.4, 1.0) / 10.0  # keV / projected mm
    landau = rng.lognormal(0.0, 0.35, n // 7 + 1).repeat(7)[:n]
    deposits = dedx * seg_len_mm * landau
    energy = float(deposits.sum())
    drift, sigma = _diffusion(rng)
    return _make("muon", energy, energy * light_yield, points, deposits, sigma, drift)


def spark(rng: np.random.Generator, geom: Geometry) -> TruthTrack:
    """Truth for a GEM discharge; the picture code draws its glow (see picture.spark_glow)."""
    lo, hi = geom.rows
    x, y = float(rng.uniform(lo, hi)), float(rng.uniform(0, geom.shape[1]))
    extent = 0.25 * min(geom.shape)
    return TruthTrack(
        type="spark",
        energy_kev=None,
        light=0.0,
        x=x,
        y=y,
        xmin=x - extent,
        xmax=x + extent,
        ymin=y - extent,
        ymax=y + extent,
        length_px=0.0,
        sigma_px=extent,
    )
