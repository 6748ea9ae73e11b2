"""A reconstruction job that dies once (its worker node lost) is retried and succeeds."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import psutil

from cygno.flows.process_run import process_run
from cygno.reco.config import load_config, reco_version
from tests.flows.harness import api_post


def _kill_first_job(stop: threading.Event, killed: list[int]) -> None:
    me = psutil.Process(os.getpid())
    while not stop.is_set() and not killed:
        for child in me.children(recursive=True):
            try:
                # a job process (cold, or a warm worker running a job) works in its sandbox
                if Path(child.cwd()).name.startswith("htcondor-job-"):
                    child.send_signal(signal.SIGKILL)
                    killed.append(child.pid)
                    return
            except psutil.Error:
                continue
        stop.wait(0.02)


def test_a_job_that_dies_once_is_retried_and_the_run_completes(plat):
    _, run = plat.simulate(runs=1, events=4)
    stop, killed = threading.Event(), []
    killer = threading.Thread(target=_kill_first_job, args=(stop, killed), daemon=True)
    killer.start()
    try:
        state = process_run(plat.store.uri(run.key), return_state=True)
    finally:
        stop.set()
        killer.join()

    assert killed, "no reconstruction job was seen"
    assert state.is_completed(), state.message
    version = reco_version(load_config(plat.settings.reco_config))
    assert plat.catalog.reco_output(run.run_number, "LNGS", version).events == 4
    flow_run_id = str(state.state_details.flow_run_id)  # the chunks are its own task runs
    chunk_runs = api_post("task_runs/filter", {"flow_runs": {"id": {"any_": [flow_run_id]}}})
    counts = [t["run_count"] for t in chunk_runs if t["name"].startswith("reconstruct-chunk")]
    assert len(counts) == 2 and max(counts) == 2  # one chunk ran twice, the other once
