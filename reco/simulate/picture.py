"""One camera picture: dark frame + tracks drawn photon by photon, in the bank's layout.

Signal is built as Poisson-many light quanta (1 quantum = 1 ADC count) scattered by
Gaussian diffusion around each track's deposit points, so a track's pedestal-subtracted
integral fluctuates around its truth ``light`` by √light.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from cygno.reco.simulate.camera import (
    ADC_MAX,
    PEDESTAL_LEVEL,
    Camera,
    fast_standard_normal,
    make_camera,
)
from cygno.reco.simulate.tracks import (
    LIGHT_YIELD,
    Geometry,
    Track,
    TruthTrack,
    cosmic_muon,
    electron_recoil,
    fe55_spot,
    nuclear_recoil,
    spark,
)

KINDS = ("pedestal", "noise", "fe55", "muon", "er", "nr", "mixed")
"""Run kinds; ``pedestal`` and ``noise`` pictures carry no tracks."""

SPARK_VETO_OFFSET = 9e6
"""The production spark veto fires when sum(raw) > 2·100·Npix + 9e6."""

MIN_SEPARATION_PX = 80.0
"""Wanted distance between tracks of one picture at LIME size (scaled with the shape)."""

Maker = Callable[[np.random.Generator, Geometry, float], Track]


def spark_threshold(shape: tuple[int, int]) -> float:
    """The raw-sum threshold of the production spark veto for this shape."""
    return 2 * PEDESTAL_LEVEL * shape[0] * shape[1] + SPARK_VETO_OFFSET


def _makers(rng: np.random.Generator, kind: str) -> list[Maker]:
    """Which tracks a picture of this kind gets (muons first so others avoid them)."""
    if kind in ("pedestal", "noise"):
        return []
    if kind == "fe55":
        return [fe55_spot] * int(rng.integers(1, 4))
    if kind == "muon":
        return [cosmic_muon]
    if kind == "er":
        return [electron_recoil] * int(rng.integers(1, 3))
    if kind == "nr":
        return [nuclear_recoil] * int(rng.integers(1, 3))
    if kind == "mixed":
        return [cosmic_muon, electron_recoil, nuclear_recoil] + [fe55_spot] * int(
            rng.integers(1, 3)
        )
    raise ValueError(f"unknown picture kind {kind!r}; expected one of {', '.join(KINDS)}")


def _sample(points: np.ndarray, limit: int = 256) -> np.ndarray:
    return points[:: max(1, len(points) // limit)]


def _far_enough(track: Track, others: list[Track], separation: float) -> bool:
    mine = _sample(track.points)
    for other in others:
        theirs = _sample(other.points)
        gap = np.sqrt(((mine[:, None, :] - theirs[None, :, :]) ** 2).sum(-1)).min()
        if gap < separation + 3 * (track.truth.sigma_px + other.truth.sigma_px):
            return False
    return True


def make_tracks(
    rng: np.random.Generator,
    shape: tuple[int, int],
    kind: str,
    light_yield: float = LIGHT_YIELD,
    attempts: int = 30,
) -> list[Track]:
    """Random tracks for one picture, kept apart from each other when the picture allows."""
    geom = Geometry((int(shape[0]), int(shape[1])))
    separation = max(20.0, MIN_SEPARATION_PX * geom.scale)
    tracks: list[Track] = []
    for maker in _makers(rng, kind):
        track = maker(rng, geom, light_yield)
        for _ in range(attempts - 1):
            if _far_enough(track, tracks, separation):
                break
            track = maker(rng, geom, light_yield)
        tracks.append(track)
    return tracks


def _quanta(rng: np.random.Generator, track: Track, shape: tuple[int, int]) -> np.ndarray:
    """Flat frame indices of the light quanta of one track (Poisson count, diffused)."""
    height, width = shape
    counts = rng.poisson(track.truth.light * track.weights)
    n = int(counts.sum())
    pos = np.repeat(track.points.astype(np.float32), counts, axis=0)
    pos += np.float32(track.truth.sigma_px) * fast_standard_normal(rng, 2 * n).reshape(n, 2)
    pos += np.float32(0.5)
    ij = np.floor(pos).astype(np.int64)
    inside = (ij[:, 0] >= 0) & (ij[:, 0] < height) & (ij[:, 1] >= 0) & (ij[:, 1] < width)
    ij = ij[inside]
    return ij[:, 0] * width + (width - 1 - ij[:, 1])  # working y -> frame column


def _spark_glow(rng: np.random.Generator, frame: np.ndarray, truth: TruthTrack, shape) -> None:
    """Add a discharge: a broad glow beyond the veto threshold and a saturated core."""
    height, width = shape
    needed = 1.5 * (PEDESTAL_LEVEL * height * width + SPARK_VETO_OFFSET)
    gx = np.exp(-0.5 * ((np.arange(height) - truth.x) / (0.35 * height)) ** 2)
    gy = np.exp(-0.5 * ((width - 1 - truth.y - np.arange(width)) / (0.35 * width)) ** 2)
    scale = needed / (gx.sum() * gy.sum())
    glow = np.outer(gx * scale, gy).astype(np.float32)
    glow += np.sqrt(glow) * rng.standard_normal(glow.shape, dtype=np.float32)
    frame += glow.ravel()
    truth.light = float(needed)
    radius = max(3.0, 0.02 * min(shape))
    r0, c0 = round(truth.x), round(width - 1 - truth.y)
    rows = slice(max(0, int(r0 - radius)), min(height, int(r0 + radius) + 1))
    cols = slice(max(0, int(c0 - radius)), min(width, int(c0 + radius) + 1))
    rr, cc = np.ogrid[rows, cols]
    core = (rr - r0) ** 2 + (cc - c0) ** 2 <= radius**2
    view = frame.reshape(shape)[rows, cols]
    view[core] = ADC_MAX


def simulate_picture(
    rng: np.random.Generator,
    shape: tuple[int, int] = (2304, 2304),
    *,
    kind: str = "fe55",
    camera: Camera | None = None,
    camera_seed: int = 0,
    tracks: Sequence[Track] | None = None,
    with_spark: bool = False,
    light_yield: float = LIGHT_YIELD,
) -> tuple[np.ndarray, list[TruthTrack]]:
    """One raw CAM0 frame (uint16, height × width, bank layout) and its truth.

    ``tracks`` overrides the random tracks of ``kind`` (e.g. a spot placed on purpose).
    """
    shape = (int(shape[0]), int(shape[1]))
    camera = camera or make_camera(camera_seed, shape)
    if camera.shape != shape:
        raise ValueError(f"camera shape {camera.shape} differs from picture shape {shape}")
    if tracks is None:
        tracks = make_tracks(rng, shape, kind, light_yield)
    frame = camera.dark_frame(rng)
    truths = [track.truth for track in tracks]
    if tracks:
        quanta = np.concatenate([_quanta(rng, track, shape) for track in tracks])
        np.add.at(frame, quanta, np.float32(1.0))
    if with_spark:
        truth = spark(rng, Geometry(shape))
        _spark_glow(rng, frame, truth, shape)
        truths.append(truth)
    frame += np.float32(0.5)  # round half up on the truncating cast below
    np.clip(frame, 0.0, ADC_MAX, out=frame)
    return frame.astype(np.uint16).reshape(shape), truths
