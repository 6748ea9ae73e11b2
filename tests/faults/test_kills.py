"""Kills mid-flight: the flow process is SIGKILLed while its chunk jobs run. A rerun
completes with every output once, the raw bytes intact, and the payloads the dead
process left behind (they may hold presigned URLs) are removed once stale."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from cygno.flows.process_run import process_run
from cygno.htcondor_runner import HTCondorTaskRunner
from cygno.htcondor_runner.runner import PAYLOAD_FILE
from cygno.reco.config import load_config, reco_version
from cygno.storage import keys


def _payloads(plat) -> list:
    return sorted((plat.root / "jobs").glob(f"*/*/{PAYLOAD_FILE}"))


@pytest.mark.bench  # a flow process and its jobs: a minute of work
def test_a_flow_killed_mid_reconstruction_reruns_to_one_clean_result(plat, prefect_api):
    _, run = plat.simulate(runs=1, events=6)
    data = plat.store.get_bytes(run.key)
    code = "import sys; from cygno.flows.process_run import process_run; process_run(sys.argv[1])"
    flow = subprocess.Popen(
        [sys.executable, "-c", code, plat.store.uri(run.key)],
        env={**os.environ, "PREFECT_API_URL": prefect_api},
        start_new_session=True,
    )
    deadline = time.monotonic() + 240
    while not _payloads(plat) and flow.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert flow.poll() is None, "the flow ended before any chunk job started"
    os.killpg(flow.pid, signal.SIGKILL)  # the flow process and its local jobs
    flow.wait(30)
    left = _payloads(plat)
    assert left, "a killed flow leaves its payloads (its finally never ran)"
    for path in left:  # a day later: stale
        os.utime(path, (time.time() - 2 * 86400,) * 2)

    state = process_run(plat.store.uri(run.key), return_state=True)

    assert state.is_completed(), state.message
    assert _payloads(plat) == []
    version = reco_version(load_config(plat.settings.reco_config))
    assert plat.catalog.reco_output(run.run_number, "LNGS", version).events == 6
    assert [e.key for e in plat.tape.list(keys.RAW_PREFIX)] == [run.key]
    (copy,) = plat.catalog.tape_copies(raw_uri=plat.store.uri(run.key))
    assert copy.state == "ok"
    assert plat.store.get_bytes(run.key) == data
    reco = [k for k in plat.store.list(keys.RECO_PREFIX) if k.endswith(".root")]
    assert len(reco) == 1


def test_a_runner_removes_only_stale_payloads(tmp_path):
    fresh = tmp_path / "jobs" / "process-x" / "chunk-1"
    stale = tmp_path / "jobs" / "process-y" / "chunk-1"
    for directory in (fresh, stale):
        directory.mkdir(parents=True)
        (directory / PAYLOAD_FILE).write_bytes(b"payload")
    os.utime(stale / PAYLOAD_FILE, (time.time() - 2 * 86400,) * 2)
    with HTCondorTaskRunner(backend="local", max_workers=1, job_dir=tmp_path / "jobs"):
        pass
    assert (fresh / PAYLOAD_FILE).exists() and not (stale / PAYLOAD_FILE).exists()
