"""Orchestration overhead of process-run on a 40-picture LIME-size run, 2 workers.

    overhead = wall time of process_run / (one inflate pass + chunk time / workers)

measured in the same run: the inflate pass (reading the run once, as ingest must) and
the chunks (the reconstruction itself) are what no orchestration can avoid; 1.0 would
mean that tape, logbook, pedestal lookup, job dispatch, merge, catalog and quality all
hide behind them or cost nothing. Goal ≤ 1.3 (issue 11). A per-stage timeline from the
Prefect API (every flow and task run: start after the flow's start, duration) shows
where the rest goes. A small run is processed first so numba's cache and the Prefect
server are warm, as they are in production.
"""

from __future__ import annotations

import io
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests.flows.harness

from tests.flows.harness import platform, prefect_server

SHAPE = (2304, 2304)
PICTURES = int(os.environ.get("CYGNO_BENCH_PICTURES", "40"))  # LIME runs: ~400


def _pedestal(plat, run: int) -> None:
    """A pedestal run with its maps already in pedestals/ (as after its own process-run)."""
    from cygno.reco.config import load_config
    from cygno.reco.pedestal import compute_pedestal
    from cygno.reco.simulate.upload import simulate_one
    from cygno.tasks.pedestal import pedestal_product

    simulated = simulate_one(plat.store, plat.logbook, run, 12, "pedestal", shape=SHAPE)
    plat.logbook.update_run(run, number_of_events=100)  # the rule wants ≥ 100
    with plat.store.open(simulated.key, "rb") as stream:
        maps = compute_pedestal(stream)
    buffer = io.BytesIO()
    maps.save(buffer)
    config = load_config(plat.settings.reco_config)
    plat.store.put_bytes(pedestal_product("LNGS", run, config).key, buffer.getvalue())


def _inflate_pass(plat, key: str) -> float:
    """Wall seconds of one read of the run from the store, touching every picture."""
    from cygno.storage.midas import MidasFile

    start = time.perf_counter()
    with plat.store.open(key, "rb") as stream, MidasFile(stream) as midas:
        for event in midas:
            if event.is_picture:
                assert int(event.picture()[0, 0]) >= 0
    return time.perf_counter() - start


def _timeline(since: datetime) -> list[tuple[float, float, str]]:
    """(start after `since`, duration, name) of every flow and task run that began then."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        runs = [*client.read_flow_runs(limit=200), *client.read_task_runs(limit=200)]
    rows = []
    for run in runs:
        if run.start_time is None or run.end_time is None or run.start_time < since:
            continue
        begin = (run.start_time - since).total_seconds()
        rows.append((begin, (run.end_time - run.start_time).total_seconds(), run.name))
    return sorted(rows)


@pytest.mark.bench
def test_bench_process_run_overhead(tmp_path, monkeypatch, figure):
    from cygno.flows.process_run import process_run
    from cygno.reco.simulate.upload import simulate_one

    with (
        prefect_server(tmp_path / "prefect-home"),
        platform(
            tmp_path / "platform",
            monkeypatch,
            CYGNO_RECO_CONFIG="lngs",
            CYGNO_WORKERS="2",
            CYGNO_CHUNK_EVENTS="50",
        ) as plat,
    ):
        _pedestal(plat, 1)
        warm = simulate_one(plat.store, plat.logbook, 2, 2, "mixed", shape=SHAPE, seed=1)
        process_run(plat.store.uri(warm.key))
        run = simulate_one(plat.store, plat.logbook, 3, PICTURES, "mixed", shape=SHAPE, seed=2)
        inflate = _inflate_pass(plat, run.key)

        since = datetime.now(UTC)
        start = time.perf_counter()
        result = process_run(plat.store.uri(run.key))
        wall = time.perf_counter() - start
        timeline = _timeline(since)

    workers = int(plat.env["CYGNO_WORKERS"])
    chunks = result["chunk_seconds"]
    floor = inflate + sum(chunks) / workers
    print(
        f"\nprocess_run on {PICTURES} pictures {SHAPE[0]}x{SHAPE[1]}, {workers} workers: "
        f"wall {wall:.1f} s; one inflate pass {inflate:.1f} s; {len(chunks)} chunks "
        f"reconstructed in {sum(chunks):.1f} s ({sum(chunks) / workers:.1f} s on {workers} "
        f"workers) -> floor {floor:.1f} s"
    )
    print(f"  {'start s':>8s} {'took s':>7s}  flow or task run")
    for begin, took, name in timeline:
        print(f"  {begin:8.2f} {took:7.2f}  {name}")
    assert result["quality_flag"] in ("good", "warning", "bad")
    assert len(chunks) >= workers
    figure("process-run wall / (inflate pass + chunks / workers)", wall / floor, 1.3, "lower")
