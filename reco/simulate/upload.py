"""Simulate runs the way the DAQ delivers them: object store upload + DAQ logbook rows.

Per run, as LIME's DAQ writes its ``Runlog`` (MIDAS mlogger, then the uploader): a row
inserted at begin of run with the begin-of-run columns, ``stop_time`` and the event count
set at end of run, the file published atomically as ``raw/<tag>/run<NNNNN>.mid.gz`` (its
truth JSON published just before, so whoever reacts to the raw file finds the truth),
then the uploader's columns set one UPDATE each (md5, size, tag, cloud status) — no
change-time column anywhere. A pedestal run (HV off, ``pedestal_run`` 1) comes first so
the data runs have a pedestal to be reconstructed with.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cygno.reco.simulate.run import EPOCH, RunTruth, simulate_run, truth_name
from cygno.reco.simulate.tracks import LIGHT_YIELD
from cygno.storage.checksum import Checksums
from cygno.storage.keys import raw_key

LIME_HV = {
    "GEM1_V": 440.0,
    "GEM2_V": 440.0,
    "GEM3_V": 440.0,
    "DRIFT_V": 30000.0,
    "CATHODE_V": 30000.0,
    **{f"T{i}_V": 500.0 for i in range(1, 7)},
}
"""Nominal LIME voltages (V) written for HV-on runs; pedestal runs have them at 0."""

RUN_GAP_S = 60.0
"""Dead time between consecutive runs."""


@dataclass
class SimulatedRun:
    """One run as delivered: where it went and what it holds."""

    run_number: int
    key: str
    truth_key: str
    checksums: Checksums
    truth: RunTruth

    @property
    def pedestal(self) -> bool:
        return self.truth.pedestal


Progress = Callable[[int, int, int], None]
"""``progress(run_number, pictures_done, pictures_total)``."""


def truth_key(tag: str, run: int) -> str:
    """``raw/<tag>/run<NNNNN>.truth.json``, beside the raw file."""
    return raw_key(tag, run).rsplit("/", 1)[0] + "/" + truth_name(run)


def _utc(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).replace(microsecond=0)


def _start_row(run: int, kind: str, events: int, start: float, exposure: float, seed: int):
    pedestal = kind == "pedestal"
    hv = dict.fromkeys(LIME_HV, 0.0) if pedestal else dict(LIME_HV)
    description = (
        "Simulated pedestal run (HV off)"
        if pedestal
        else f"Simulated {kind} run, {events} pictures, seed {seed}"
    )
    return {
        "run_number": run,
        "run_description": description,
        "start_time": _utc(start),
        "exposure_sec": exposure,
        **hv,
        "HV_STATE": 0 if pedestal else 1,
        "pedestal_run": 1 if pedestal else 0,
        "source_type": "Fe55" if kind in ("fe55", "mixed") else "none",
        "source_position": 0.0,
        "run_type": "pedestal" if pedestal else f"simulation:{kind}",
        "storage_local_status": 0,
        "storage_cloud_status": 0,
        "storage_tape_status": 0,
        "online_reco_status": -1,
        "OFFSET_V": 0.0 if pedestal else 10.0,
        **{f"PMT{i}_V": 0.0 if pedestal else 770.0 for i in range(1, 5)},
        "total_gas_flow": 5.0,
        "sequence_filename": "",
        "trigger_logic": "camera",
    }


def simulate_one(
    store: Any,
    logbook: Any,
    run_number: int,
    n_events: int,
    kind: str,
    *,
    tag: str = "LNGS",
    progress: Callable[[int], None] | None = None,
    **options: Any,
) -> SimulatedRun:
    """Simulate one run straight into the store (no local copy) and log it as the DAQ does."""
    start = options.get("start_time")
    start = float(EPOCH + 1200 * run_number if start is None else start)
    options["start_time"] = start
    seed = int(options.get("seed", 0))
    exposure = float(options.get("exposure_s", 0.3))
    logbook.insert_run(**_start_row(run_number, kind, n_events, start, exposure, seed))
    key, tkey = raw_key(tag, run_number), truth_key(tag, run_number)
    with store.publish(key) as out:
        truth = simulate_run(out, run_number, n_events, kind, progress=progress, **options)
        store.put_bytes(tkey, truth.to_json().encode())
    checksums = out.checksums
    logbook.update_run(  # end of run (mlogger)
        run_number,
        stop_time=_utc(truth.stop_time),
        number_of_events=truth.n_pictures,
        storage_local_status=1,
    )
    for column, value in (  # the uploader, one column at a time
        ("file_checksum", checksums.md5),
        ("file_size", checksums.size),
        ("file_s3_tag", tag),
        ("storage_cloud_status", 1),
    ):
        logbook.update_run(run_number, **{column: value})
    return SimulatedRun(run_number, key, tkey, checksums, truth)


def simulate_and_upload(
    store: Any,
    logbook: Any,
    *,
    runs: int = 3,
    events: int = 20,
    kind: str = "fe55",
    shape: tuple[int, int] = (2304, 2304),
    seed: int = 0,
    tag: str = "LNGS",
    first_run: int = 1,
    pedestal: bool = True,
    pedestal_events: int = 100,
    spark_fraction: float = 0.0,
    start_time: float | None = None,
    progress: Progress | None = None,
    camera_seed: int | None = None,
    light_yield: float = LIGHT_YIELD,
    exposure_s: float = 0.3,
    pmt: bool = True,
) -> list[SimulatedRun]:
    """A pedestal run (unless ``pedestal=False``) then ``runs`` data runs, numbered from
    ``first_run``, uploaded to ``store`` and logged in ``logbook`` (a DaqLogbook).

    All runs share one simulated camera (``camera_seed``, default ``seed``), so the
    pedestal run's maps are the right ones for the data runs; each run has its own
    random stream (seeded by ``seed`` and its run number).
    """
    plan = ([("pedestal", pedestal_events)] if pedestal else []) + [(kind, events)] * runs
    clock = float(EPOCH + 1200 * first_run if start_time is None else start_time)
    delivered: list[SimulatedRun] = []
    for offset, (run_kind, n_events) in enumerate(plan):
        run = first_run + offset

        def tick(done: int, run: int = run, total: int = n_events) -> None:
            if progress:
                progress(run, done, total)

        result = simulate_one(
            store,
            logbook,
            run,
            n_events,
            run_kind,
            tag=tag,
            progress=tick,
            shape=shape,
            seed=seed,
            camera_seed=seed if camera_seed is None else camera_seed,
            spark_fraction=spark_fraction,
            start_time=clock,
            light_yield=light_yield,
            exposure_s=exposure_s,
            pmt=pmt,
        )
        delivered.append(result)
        clock = result.truth.stop_time + RUN_GAP_S
    return delivered
