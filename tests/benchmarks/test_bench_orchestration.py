"""Orchestration overhead of process-run on a 40-picture LIME-size run.

    overhead = wall time of process_run / (sum of the chunks' reconstruction time / workers)

measured in the same run: 1.0 would mean that ingest, tape, logbook, pedestal lookup,
job dispatch, merge, catalog and quality all hide behind (or cost nothing next to) the
reconstruction itself. Goal ≤ 1.15. A small run is processed first so numba's cache
and the Prefect server are warm, as they are in production.
"""

from __future__ import annotations

import io
import os
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests.flows.harness

from tests.flows.harness import platform, prefect_server

SHAPE = (2304, 2304)
PICTURES = int(os.environ.get("CYGNO_BENCH_PICTURES", "40"))  # LIME runs: ~400


def _pedestal(plat, run: int) -> None:
    """A pedestal run with its maps already in pedestals/ (as after its own process-run)."""
    from cygno.reco.pedestal import compute_pedestal
    from cygno.reco.simulate.upload import simulate_one
    from cygno.storage import keys

    simulated = simulate_one(plat.store, plat.logbook, run, 12, "pedestal", shape=SHAPE)
    plat.logbook.update_run(run, number_of_events=100)  # the rule wants ≥ 100
    with plat.store.open(simulated.key, "rb") as stream:
        maps = compute_pedestal(stream)
    buffer = io.BytesIO()
    maps.save(buffer)
    plat.store.put_bytes(keys.pedestal_key("LNGS", run), buffer.getvalue())


@pytest.mark.bench
def test_bench_process_run_overhead(tmp_path, monkeypatch):
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

        start = time.perf_counter()
        result = process_run(plat.store.uri(run.key))
        wall = time.perf_counter() - start

    workers = plat.env["CYGNO_WORKERS"]
    chunks = result["chunk_seconds"]
    ideal = sum(chunks) / int(workers)
    ratio = wall / ideal
    print(
        f"\nprocess_run on {PICTURES} pictures {SHAPE[0]}x{SHAPE[1]}: wall {wall:.1f} s, "
        f"{len(chunks)} chunks reconstructed in {sum(chunks):.1f} s on {workers} workers "
        f"(ideal {ideal:.1f} s) -> orchestration overhead {ratio:.2f} (goal <= 1.15)"
    )
    assert result["quality_flag"] in ("good", "warning", "bad")
    assert len(chunks) >= int(workers)
