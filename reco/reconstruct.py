"""Driver: a MIDAS run file (or a chunk of its pictures) → one reco ROOT file.

Module-level functions only: HTCondor jobs receive them by module reference.
Per picture the timings are (the full-resolution steps are fused into one kernel):
``t_pedsub`` = the fused pass (spark sum, cimax, pedestal subtraction, zero
suppression, acceptance, 2×2 median and ×4 rebin); ``t_saturation``, ``t_zerosup``,
``t_xycut``, ``t_rebin`` and ``t_medianfilter`` = 0 (done inside that pass; production's
saturation correction is off at LNGS); ``t_noisered`` = macro-pixel neighbour filter +
point selection; ``t_DBSCAN`` = iDBSCAN; ``t_variables`` = cluster features.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, BinaryIO

import numpy as np

from cygno.reco import picture as pic
from cygno.reco.config import RecoConfig, reco_version
from cygno.reco.features import cluster_features
from cygno.reco.idbscan import idbscan
from cygno.reco.pedestal import PedestalMaps
from cygno.reco.pmt import PMTStage
from cygno.reco.rootio import CLUSTER_BRANCHES, RecoWriter
from cygno.reco.slowcontrol import SLOW_BANK, SlowControl
from cygno.storage.midas import EventIndex, MidasFile

BATCH = 64  # pictures per TTree basket write
BATCH_PIXELS = 1 << 18  # or fewer, when their reduced pixels reach this many


@dataclass(frozen=True)
class RecoSummary:
    pictures: int  # pictures read (vetoed included)
    vetoed: int
    clusters: int
    seconds: float
    seconds_per_picture: float


_warm = False


def tiny_picture(writable: bool = False) -> tuple[np.ndarray, PedestalMaps, RecoConfig]:
    """A 64×64 frame with one bright blob, its pedestal, and a configuration whose
    acceptance covers it: every step of the chain runs on it in milliseconds. Read-only
    by default, like the frames of a MIDAS file (views on the event's bytes); numba
    compiles one specialisation for read-only and one for writable frames."""
    shape = (64, 64)
    frame = np.full(shape, 100, np.uint16)
    frame[24:40, 24:40] += 60
    frame.flags.writeable = writable
    maps = PedestalMaps(np.full(shape, 100, np.float32), np.ones(shape, np.float32), None, 2)
    config = RecoConfig()
    config = dataclasses.replace(
        config, acceptance=dataclasses.replace(config.acceptance, x_min=0, x_max=64)
    )
    return frame, maps, config


def warm_up() -> None:
    """Load (or compile) every kernel of the chain once per process on a tiny picture, so
    that loading never counts in a picture's t_* timings."""
    global _warm
    if _warm:
        return
    _warm = True
    reconstruct_picture(*tiny_picture())


class Prepared:
    """Per-file state: threshold map (nsigma·sigma), kernel parameters, buffers."""

    def __init__(self, pedestal: PedestalMaps, config: RecoConfig):
        warm_up()
        self.config = config
        self.pedestal = pedestal
        self.mean = np.ascontiguousarray(pedestal.mean, dtype=np.float32)
        self.threshold = (np.float32(config.picture.nsigma) * pedestal.sigma).astype(np.float32)
        a, p, n = config.acceptance, config.picture, config.noise
        self.chain = pic.ChainParams(
            cimax=p.cimax,
            acceptance=(a.x_min, a.x_max, a.y_min, a.y_max),
            rebin=p.rebin,
            median=n.median_2x2,
            border=n.border,
            max_deviation=n.max_deviation,
            min_neighbors_average=n.min_neighbors_average,
            min_active=n.min_active_neighbors,
            spark_per_pixel=p.spark_per_pixel,
            spark_offset=p.spark_offset,
        )
        h, w = self.mean.shape
        self.acceptance = (max(a.x_min, 0), min(a.x_max, h), max(a.y_min, 0), min(a.y_max, w))
        cal = config.calibration
        self.features = dataclasses.replace(
            config.features,
            rebin=p.rebin,
            calibration=cal.kev_per_count if cal.enabled else None,
        )
        self.vignetting = _vignetting_map(cal.vignetting_map) if cal.enabled else None
        self.ws = pic.Workspace.for_shape(self.mean.shape, p.rebin)


@lru_cache(maxsize=4)
def _vignetting_map(path: str) -> np.ndarray | None:
    """Relative light map (npz key ``map``, working-picture orientation, any resolution)."""
    if not path:
        return None
    with np.load(path) as data:
        return np.asarray(data["map"], dtype=np.float64)


def _apply_vignetting(clusters: dict[str, np.ndarray], light: np.ndarray, shape) -> None:
    if not len(clusters["sc_energy"]):
        return
    sx = light.shape[0] / shape[0]
    sy = light.shape[1] / shape[1]
    ix = np.clip((clusters["sc_xmean"] * sx).astype(int), 0, light.shape[0] - 1)
    iy = np.clip((clusters["sc_ymean"] * sy).astype(int), 0, light.shape[1] - 1)
    clusters["sc_energy"] = (clusters["sc_energy"] * light[ix, iy]).astype(np.float32)


def reconstruct_picture(
    frame: np.ndarray,
    pedestal: PedestalMaps,
    config: RecoConfig,
    prepared: Prepared | None = None,
    seed: int = 0,
) -> tuple[dict[str, Any] | None, dict[str, np.ndarray] | None]:
    """One picture → (event record, per-cluster arrays), or (None, None) when vetoed.

    The event record holds cmos_*, lp_len, nSc and the t_* timings (run/event numbers
    are the caller's). Pass a `Prepared` to reuse maps and buffers across pictures.
    """
    prep = prepared if prepared is not None else Prepared(pedestal, config)
    if frame.shape != prep.mean.shape:
        raise ValueError(f"picture shape {frame.shape} != pedestal shape {prep.mean.shape}")
    steps = pic.process(frame, prep.mean, prep.threshold, prep.chain, prep.ws)
    if steps.vetoed:
        return None, None
    t0 = time.perf_counter()
    result = idbscan(steps.points, steps.weights, config.idbscan, seed=seed)
    t1 = time.perf_counter()
    z = pic.PictureZ(frame, prep.mean, config.picture.cimax)
    # production counts sc_nhits on the zero-suppressed picture before the acceptance cut
    zs = pic.PictureZS(z, prep.threshold, (0, frame.shape[0], 0, frame.shape[1]))
    clusters, _ = cluster_features(
        z, zs, steps.points, result.labels, result.tracklike, prep.features
    )
    if prep.vignetting is not None:
        _apply_vignetting(clusters, prep.vignetting, frame.shape)
    t2 = time.perf_counter()
    record = {
        "cmos_integral": steps.cmos_integral,
        "cmos_mean": steps.cmos_mean,
        "cmos_rms": steps.cmos_rms,
        "lp_len": len(steps.points),
        "nSc": len(clusters["sc_integral"]),
        "t_pedsub": steps.t_pass,
        "t_saturation": 0.0,
        "t_zerosup": 0.0,
        "t_xycut": 0.0,
        "t_rebin": 0.0,
        "t_medianfilter": 0.0,
        "t_noisered": steps.t_noise,
        "t_DBSCAN": t1 - t0,
        "t_variables": t2 - t1,
    }
    return record, clusters


def _pictures(midas: MidasFile, events: tuple[int, int] | None, camera: int) -> Iterator[Any]:
    """Picture events (those carrying the camera's bank); a chunk is read by picture
    number, skipping earlier events without decoding them (MidasFile.read_events)."""
    bank = f"CAM{camera}"
    source = midas.read_events(*events) if events is not None else midas
    for event in source:
        if event.is_picture and bank in event.banks:
            yield event


def reco_params(
    config: RecoConfig,
    *,
    input_uri: str | None,
    input_adler32: str | None,
    run: int | None,
    pedestal: PedestalMaps,
    events: tuple[int, int] | None,
) -> dict[str, Any]:
    """The Reco_params record: every parameter plus provenance."""
    return {
        "reco_version": reco_version(config),
        "config": config.name,
        "config_hash": config.hash,
        "params": config.to_dict(),
        "input_uri": input_uri,
        "input_adler32": input_adler32,
        "run": run,
        "pedestal_run": pedestal.run,
        "pedestal_pictures": pedestal.n_pictures,
        "events": list(events) if events is not None else None,
    }


def _uri_of(raw: Any) -> str | None:
    if isinstance(raw, str | os.PathLike):
        return os.fspath(raw)
    return getattr(raw, "path", None) or getattr(raw, "name", None)


def reconstruct_file(
    raw: str | os.PathLike | BinaryIO,
    pedestal: PedestalMaps,
    config: RecoConfig,
    events: tuple[int, int] | None = None,
    out_path: str | os.PathLike = "reco.root",
    run: int | None = None,
    input_adler32: str | None = None,
    progress: Callable[[int, int, int], Any] | None = None,
    input_uri: str | None = None,
    index: EventIndex | None = None,
) -> RecoSummary:
    """Reconstruct a run file (or pictures [start, stop) of it) into `out_path`.

    `index`: the run's EventIndex (built once, shipped to chunk jobs): a chunk then starts
    at, or for gzip near, its first picture instead of reading the file from the start.

    `progress(pictures_done, vetoed, clusters)` is called after every picture.
    The output appears atomically; on error no file is left behind.
    """
    start = time.perf_counter()
    prep = Prepared(pedestal, config)
    camera = config.picture.camera
    n_pictures = n_vetoed = n_clusters = 0
    with MidasFile(raw, index=index) as midas:
        run_number = run if run is not None else midas.run_number
        params = reco_params(
            config,
            input_uri=input_uri or _uri_of(raw),
            input_adler32=input_adler32,
            run=run_number,
            pedestal=pedestal,
            events=events,
        )
        first = events[0] if events is not None else 0
        ped_run = -1 if pedestal.run is None else pedestal.run
        slow = SlowControl(midas.bor_odb)
        with RecoWriter(out_path, params, CLUSTER_BRANCHES) as writer:
            pmt = PMTStage(config.pmt, writer.file, run_number or 0, lambda: midas.bor_odb)
            batch_events: list[dict[str, Any]] = []
            batch_clusters: list[dict[str, np.ndarray]] = []
            batch_pixels = 0
            for index, event in enumerate(_pictures(midas, events, camera)):
                number = event.picture_number if event.picture_number >= 0 else first + index
                frame = event.picture(camera, shape=prep.mean.shape)
                record, clusters = reconstruct_picture(frame, pedestal, config, prep, seed=number)
                n_pictures += 1
                pmt.add(number, event)
                if SLOW_BANK in event.banks:
                    slow.update(event.banks[SLOW_BANK].data)
                if record is None:
                    n_vetoed += 1
                else:
                    record.update(run=run_number or 0, event=number, pedestal_run=ped_run)
                    record.update(slow.record())
                    batch_events.append(record)
                    batch_clusters.append(clusters)
                    batch_pixels += len(clusters["redpix_iz"])
                    n_clusters += record["nSc"]
                    if len(batch_events) >= BATCH or batch_pixels >= BATCH_PIXELS:
                        writer.extend(batch_events, batch_clusters)
                        batch_events, batch_clusters, batch_pixels = [], [], 0
                if progress is not None:
                    progress(n_pictures, n_vetoed, n_clusters)
            writer.extend(batch_events, batch_clusters)
            pmt.close()
    seconds = time.perf_counter() - start
    return RecoSummary(
        pictures=n_pictures,
        vetoed=n_vetoed,
        clusters=n_clusters,
        seconds=seconds,
        seconds_per_picture=seconds / n_pictures if n_pictures else 0.0,
    )


__all__ = [
    "Prepared",
    "RecoSummary",
    "reco_params",
    "reconstruct_file",
    "reconstruct_picture",
]
