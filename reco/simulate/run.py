"""A whole run written as LIME's DAQ writes it, with its truth beside it.

Event sequence: BOR (JSON ODB) · picture events (id 1, 32-bit banks ``CAM0``, ``TSP0``,
``FID0``, ``TIME`` on the first, ``DGH0``/``DIG0``; header time stamp = ms since the
first picture) · camera-status events (id 7, 16-bit bank ``TCAM``, Unix-time stamp)
before every tenth picture · EOR. Everything derives from one seed, so the same
arguments give the same bytes.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from cygno.reco.simulate.camera import make_camera
from cygno.reco.simulate.picture import KINDS, make_tracks, simulate_picture
from cygno.reco.simulate.pmt import CHANNEL_OFFSETS, LIME_BOARDS, pmt_banks
from cygno.reco.simulate.tracks import LIGHT_YIELD, TruthTrack

PICTURE_EVENT_ID = 1
STATUS_EVENT_ID = 7
STATUS_EVERY = 10
"""A camera-status event precedes every tenth picture (the DAQ sends one every 10 s)."""

READOUT_S = 0.18
"""Camera readout and DAQ overhead between exposures, seconds."""

EPOCH = 1_767_225_600  # 2026-01-01T00:00:00Z, base of the default (deterministic) start time


@dataclass
class PictureTruth:
    """Truth of one picture event (``index`` counts pictures from 0)."""

    index: int
    spark: bool
    tracks: list[TruthTrack]

    def to_dict(self) -> dict:
        return {
            "index": self.index,
            "spark": self.spark,
            "tracks": [t.to_dict() for t in self.tracks],
        }

    @classmethod
    def from_dict(cls, data: dict) -> PictureTruth:
        tracks = [TruthTrack.from_dict(t) for t in data["tracks"]]
        return cls(data["index"], data["spark"], tracks)


@dataclass
class RunTruth:
    """What a simulated run contains, saved as ``run<NNNNN>.truth.json`` beside it."""

    run_number: int
    kind: str
    shape: tuple[int, int]
    seed: int
    camera_seed: int
    light_yield: float
    exposure_s: float
    start_time: float
    stop_time: float
    pictures: list[PictureTruth] = field(default_factory=list)
    coordinates: str = "production: picture = frame[:, ::-1]; x = row, y = width-1-column"

    @property
    def n_pictures(self) -> int:
        return len(self.pictures)

    @property
    def pedestal(self) -> bool:
        return self.kind == "pedestal"

    def to_dict(self) -> dict:
        data = {k: v for k, v in self.__dict__.items() if k != "pictures"}
        data["shape"] = list(self.shape)
        data["pictures"] = [p.to_dict() for p in self.pictures]
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_dict(cls, data: dict) -> RunTruth:
        fields = dict(data)
        fields["shape"] = tuple(fields["shape"])
        fields["pictures"] = [PictureTruth.from_dict(p) for p in fields["pictures"]]
        return cls(**fields)

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        path.write_text(self.to_json())
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> RunTruth:
        return cls.from_dict(json.loads(Path(path).read_text()))


def truth_name(run_number: int) -> str:
    """File name of a run's truth record: ``run01234.truth.json``."""
    return f"run{run_number:05d}.truth.json"


def run_odb(
    run_number: int,
    kind: str,
    shape: tuple[int, int],
    exposure_s: float,
    start_time: float,
    stop_time: float | None = None,
) -> dict[str, Any]:
    """The ODB subset LIME's BOR/EOR carry and reconstruction reads."""
    height, width = shape
    return {
        "Experiment": {"Name": "LIME"},
        "Runinfo": {
            "State": 1 if stop_time is not None else 3,
            "Run number": run_number,
            "Start time": time.strftime("%a %b %d %H:%M:%S %Y", time.gmtime(start_time)),
            "Start time binary": int(start_time),
            "Stop time binary": int(stop_time or 0),
        },
        "Configurations": {
            "Exposure": exposure_s,
            "DRS4Correction": True,
            "DigitizerOffset": [CHANNEL_OFFSETS] * LIME_BOARDS[1].nchannels,
            "DigitizerSamples": LIME_BOARDS[1].nsamples,
            "SamplingFrequency": LIME_BOARDS[1].sampling_mhz,
            "Pedestal run": kind == "pedestal",
        },
        "Equipment": {
            "Trigger": {"Settings": {"nCamera": 1}},
            "Camera": {
                "Settings": {
                    "Model": "ORCA-Fusion (simulated)",
                    "Height": height,
                    "Width": width,
                    "Exposure": exposure_s,
                }
            },
            # slow control as LIME's (raw ADC-like values, converted by the formulas below)
            "Environment": {
                "Settings": {"Names Input": list(ENVIRONMENT_INPUTS)},
                "Variables": {"Input": list(ENVIRONMENT_INPUTS.values())},
            },
        },
        "History": {
            "Display": {
                "Environment": {
                    "Pressure": {"Formula": ["x*100", "x*100"]},
                    "Temperature": {"Formula": ["x*10", "x*10"]},
                },
                "GasSystem": {
                    "humidity": {"Formula": ["x", "x*10"]},
                    "Mixture Density": {"Formula": ["x", "x/1000"]},
                },
            }
        },
    }


# channel → raw value: LIME 9.0 → 900 mbar, atmosphere 9.1 → 910 mbar, 2.1 → 21 °C,
# 2.0 → 20 °C, 4.5 → 45 % humidity, 1600 → 1.6 kg/m³ (He:CF₄ 60:40).
ENVIRONMENT_INPUTS = {
    "P0IIn0": 2.1,
    "P0IIn3": 9.1,
    "P0IIn5": 9.0,
    "P1UIn1": 2.0,
    "P1UIn5": 4.5,
    "P3IIn6": 1600.0,
}


ProgressFn = Callable[[int], None]


def simulate_run(
    fileobj_or_path: IO[bytes] | str | os.PathLike,
    run_number: int,
    n_events: int,
    kind: str = "fe55",
    shape: tuple[int, int] = (2304, 2304),
    seed: int = 0,
    *,
    camera_seed: int = 0,
    spark_fraction: float = 0.0,
    light_yield: float = LIGHT_YIELD,
    exposure_s: float = 0.3,
    start_time: float | None = None,
    pmt: bool = True,
    compression: str | None = "gzip",
    write_truth: bool = True,
    progress: ProgressFn | None = None,
) -> RunTruth:
    """Write a MIDAS run of ``n_events`` pictures; return (and, for a path, save) its truth.

    ``camera_seed`` fixes pedestal/noise/hot-pixel maps (share it between a pedestal run
    and its data runs); ``seed`` drives everything else. Pedestal runs have the HV off:
    no tracks, no sparks, flat PMT baselines; noise runs have the HV on but no tracks.
    """
    from cygno.storage.midas import MidasWriter

    if kind not in KINDS:
        raise ValueError(f"unknown run kind {kind!r}; expected one of {', '.join(KINDS)}")
    shape = (int(shape[0]), int(shape[1]))
    rng = np.random.default_rng([int(seed), int(run_number)])
    camera = make_camera(camera_seed, shape)
    start = float(EPOCH + 1200 * run_number if start_time is None else start_time)
    dark = kind in ("pedestal", "noise")
    sparks = 0.0 if kind == "pedestal" else spark_fraction  # sparks need the HV on
    odb = run_odb(run_number, kind, shape, exposure_s, start)

    truth = RunTruth(
        run_number, kind, shape, int(seed), int(camera_seed), light_yield, exposure_s, start, start
    )
    elapsed_ms = 0
    temperature = -8.0 + rng.normal(0.0, 0.05)
    camera_clock = int(rng.integers(10_000, 1_000_000))
    with MidasWriter(fileobj_or_path, compression=compression) as writer:
        writer.write_bor(run_number, odb, int(start))
        for index in range(n_events):
            if index % STATUS_EVERY == 0:
                temperature += rng.normal(0.0, 0.02)
                stamp = int(start + elapsed_ms / 1000)
                tcam = np.array([round(temperature, 2)], dtype=np.float64)
                writer.write_event(
                    STATUS_EVENT_ID, index // STATUS_EVERY, stamp, [("TCAM", tcam)], "16"
                )
            with_spark = bool(rng.random() < sparks)
            tracks = make_tracks(rng, shape, "noise" if dark else kind, light_yield)
            frame, tracks_truth = simulate_picture(
                rng, shape, camera=camera, tracks=tracks, with_spark=with_spark
            )
            seconds = camera_clock + elapsed_ms / 1000
            banks: list[tuple[str, np.ndarray]] = [
                ("CAM0", frame),
                ("TSP0", np.array([int(seconds), int(seconds % 1 * 1e6)], dtype=np.uint32)),
                ("FID0", np.array([camera_clock // 7 + index], dtype=np.uint32)),
            ]
            if index == 0:
                banks.append(("TIME", np.array([int(start)], dtype=np.uint32)))
            if pmt:
                lit = [] if kind == "pedestal" else tracks_truth
                banks += pmt_banks(rng, lit, shape, first_ttt=elapsed_ms * 1_000_000)
            writer.write_event(PICTURE_EVENT_ID, index, elapsed_ms, banks, "32")
            truth.pictures.append(PictureTruth(index, with_spark, tracks_truth))
            if progress:
                progress(index + 1)
            step = exposure_s + READOUT_S + rng.exponential(0.02)
            elapsed_ms += round(step * 1000)
        stop = start + elapsed_ms / 1000
        truth.stop_time = stop
        writer.write_eor(
            run_number, run_odb(run_number, kind, shape, exposure_s, start, stop), int(stop)
        )
    if write_truth and isinstance(fileobj_or_path, str | os.PathLike):
        truth.save(Path(fileobj_or_path).parent / truth_name(run_number))
    return truth
