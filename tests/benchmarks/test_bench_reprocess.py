"""Reprocessing throughput and node scale, LIME pictures (2304², .mid.gz, mixed).

- reprocess-runs over RUNS catalogued runs on 2 workers (local executor):
      efficiency = (pictures / wall) / (steady-state chain rate × workers), goal ≥ 0.8
  the chain rate being one warm process reconstructing one of the same runs (pictures per
  wall second), measured in this run. Every run costs its reconstruction plus a per-run
  part (pedestal lookup, job dispatch, merge, catalog, quality); longer runs
  (CYGNO_BENCH_RUN_PICTURES) weigh that part less.
- node scale: as many processes as cores, each reconstructing the same run after loading
  its kernels: pictures per second of the node, and that ÷ (one process's rate × cores).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests.flows.harness

from tests.benchmarks.test_bench_orchestration import SHAPE, _pedestal, _timeline
from tests.flows.harness import platform, prefect_server

pytestmark = pytest.mark.bench

RUNS = 10
RUN_PICTURES = int(os.environ.get("CYGNO_BENCH_RUN_PICTURES", "12"))
WORKERS = 2

# One node-scale worker: load the kernels, wait for the common start, reconstruct.
_NODE_WORKER = textwrap.dedent(
    """
    import json, sys, time
    from cygno.reco.config import load_config
    from cygno.reco.pedestal import PedestalMaps
    from cygno.reco.reconstruct import reconstruct_file, warm_up
    raw, ped, out, start_at = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    maps, config = PedestalMaps.load(ped), load_config("lngs")
    warm_up()
    time.sleep(max(0.0, start_at - time.time()))
    begin = time.time()
    summary = reconstruct_file(raw, maps, config, out_path=out)
    print(json.dumps({"pictures": summary.pictures, "begin": begin, "end": time.time()}))
    """
)


def _stage_totals(timeline: list[tuple[float, float, str]]) -> dict[str, tuple[int, float]]:
    """Flow and task runs grouped by stage (name without its run number or id suffix):
    how many, and their summed duration."""
    totals: dict[str, tuple[int, float]] = {}
    for _, took, name in timeline:
        stage = re.sub(r"(-LNGS-\d+|-[0-9a-f]{3}|-\d+|-[0-9a-f-]{36})$", "", name)
        count, seconds = totals.get(stage, (0, 0.0))
        totals[stage] = (count + 1, seconds + took)
    return totals


def _chain_rate(raw_path: Path, pedestal, config, out: Path) -> float:
    """Pictures per wall second of one warm process on one run (best of two)."""
    from cygno.reco.reconstruct import reconstruct_file, warm_up

    warm_up()
    best = 0.0
    for _ in range(2):
        start = time.perf_counter()
        summary = reconstruct_file(raw_path, pedestal, config, out_path=out)
        best = max(best, summary.pictures / (time.perf_counter() - start))
    return best


def _node_rate(raw_path: Path, ped_path: Path, workers: int, tmp: Path) -> float:
    """Pictures per second of `workers` processes started together on the same run."""
    start_at = time.time() + 20.0  # every process has loaded its kernels by then

    def start(i: int) -> subprocess.Popen:
        out = str(tmp / f"node{i}.root")
        args = [sys.executable, "-c", _NODE_WORKER, str(raw_path), str(ped_path), out]
        return subprocess.Popen([*args, str(start_at)], stdout=subprocess.PIPE, text=True)

    procs = [start(i) for i in range(workers)]
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=1800)
        assert proc.returncode == 0
        results.append(json.loads(out.strip().splitlines()[-1]))
    begin = min(r["begin"] for r in results)
    end = max(r["end"] for r in results)
    return sum(r["pictures"] for r in results) / (end - begin)


def test_bench_reprocess_and_node_scale(tmp_path, monkeypatch, figure):
    from cygno.flows.reprocess import reprocess
    from cygno.reco.config import load_config
    from cygno.reco.pedestal import PedestalMaps
    from cygno.reco.simulate.upload import simulate_one
    from cygno.storage import keys
    from cygno.tasks.ingest import ingest
    from cygno.tasks.pedestal import pedestal_product

    with (
        prefect_server(tmp_path / "prefect-home"),
        platform(
            tmp_path / "platform",
            monkeypatch,
            CYGNO_RECO_CONFIG="lngs",
            CYGNO_WORKERS=str(WORKERS),
            CYGNO_CHUNK_EVENTS="50",
        ) as plat,
    ):
        _pedestal(plat, 1)
        for run in range(2, 2 + RUNS):  # catalogued, as ingest leaves them
            simulated = simulate_one(
                plat.store, plat.logbook, run, RUN_PICTURES, "mixed", shape=SHAPE, seed=run
            )
            ingest(plat.store.uri(simulated.key))
        raw_path = plat.store.local_path(keys.raw_key("LNGS", 2))
        ped_path = tmp_path / "ped.npz"
        config = load_config("lngs")
        ped_path.write_bytes(plat.store.get_bytes(pedestal_product("LNGS", 1, config).key))
        pedestal = PedestalMaps.load(ped_path)
        rate = _chain_rate(raw_path, pedestal, config, tmp_path / "chain.root")

        since = datetime.now(UTC)
        start = time.perf_counter()
        state = reprocess(first_run=2, last_run=1 + RUNS, return_state=True)
        wall = time.perf_counter() - start
        stages = _stage_totals(_timeline(since))
        assert state.is_completed(), state.message
        cores = os.cpu_count() or 1
        node = _node_rate(raw_path, ped_path, cores, tmp_path)
        one = _node_rate(raw_path, ped_path, 1, tmp_path)

    pictures = RUNS * RUN_PICTURES
    achieved = pictures / wall
    print(
        f"\nreprocess-runs: {RUNS} runs x {RUN_PICTURES} LIME pictures on {WORKERS} workers in "
        f"{wall:.1f} s = {achieved:.2f} pictures/s; steady-state chain {rate:.2f} pictures/s "
        f"per process -> ideal {rate * WORKERS:.2f}"
    )
    print(f"  {'stage':28s} {'runs':>5s} {'summed s':>9s}  (stages overlap: sums exceed the wall)")
    for stage, (count, seconds) in sorted(stages.items(), key=lambda kv: -kv[1][1]):
        print(f"  {stage:28s} {count:5d} {seconds:9.1f}")
    print(
        f"node scale: {cores} processes (one per core) {node:.2f} pictures/s, one process "
        f"{one:.2f} pictures/s -> scaling {node / (one * cores):.2f} of linear"
    )
    figure(
        "reprocess-runs pictures/s / (chain rate × 2 workers)",
        achieved / (rate * WORKERS),
        0.8,
        "higher",
    )
    figure(f"node: pictures/s with {cores} processes / ({cores} × one)", node / (one * cores),
           0.8, "higher")  # fmt: skip
