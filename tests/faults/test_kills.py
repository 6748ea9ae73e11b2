"""Kills mid-flight: the flow process is SIGKILLed while its chunk jobs run. A rerun
completes with every output once, the raw bytes intact, and the payloads the dead
process left behind (they may hold presigned URLs) are removed by the next runner that
starts, while a live flow process's payloads stay however old they are."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cygno.flows.process_run import process_run
from cygno.htcondor_runner import HTCondorTaskRunner
from cygno.htcondor_runner.staging import OWNER_FILE, PAYLOAD_FILE
from cygno.reco.config import load_config, reco_version
from cygno.storage import keys
from tests.flows.harness import gone, stop_group


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
    assert _payloads(plat), "a killed flow leaves its payloads (its finally never ran)"

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


def _sleeping_flow(tmp_path: Path, name: str) -> subprocess.Popen:
    """A separate flow process (its own session) whose one task sleeps in a local job."""
    (tmp_path / "sleepy.py").write_text("import time\ndef nap(s):\n    time.sleep(s)\n")
    script = tmp_path / f"{name}.py"
    script.write_text(
        f"import sys; sys.path.insert(0, {str(tmp_path)!r})\n"
        "from prefect import flow, task\n"
        "from cygno.htcondor_runner import HTCondorTaskRunner\n"
        "import sleepy\n"
        "runner = HTCondorTaskRunner(backend='local', max_workers=1, warm_workers=False,"
        f" job_dir={str(tmp_path / 'jobs')!r}, environment={{'PYTHONPATH': {str(tmp_path)!r}}})\n"
        f"@flow(name={name!r}, task_runner=runner)\n"
        "def f():\n"
        "    task(sleepy.nap).submit(300).wait()\n"
        "f()\n"
    )
    return subprocess.Popen([sys.executable, str(script)], start_new_session=True)


def _payload_of(tmp_path: Path, pid: int, deadline: float) -> Path:
    """The payload whose owner record names process ``pid``, once it is written."""
    while time.monotonic() < deadline:
        for path in (tmp_path / "jobs").glob(f"*/*/{PAYLOAD_FILE}"):
            owner = path.parent / OWNER_FILE
            if owner.exists() and json.loads(owner.read_text())["pid"] == pid:
                return path
        time.sleep(0.1)
    raise AssertionError(f"flow process {pid} wrote no payload in time")


def test_a_sigkilled_flows_payloads_go_at_the_next_runner_start_a_live_ones_stay(
    tmp_path, prefect_api, monkeypatch
):
    monkeypatch.setenv("PREFECT_API_URL", prefect_api)
    live, killed = _sleeping_flow(tmp_path, "live"), _sleeping_flow(tmp_path, "killed")
    try:
        deadline = time.monotonic() + 180
        live_payload = _payload_of(tmp_path, live.pid, deadline)
        killed_payload = _payload_of(tmp_path, killed.pid, deadline)
        os.killpg(killed.pid, signal.SIGKILL)  # the flow process and its job
        killed.wait(30)
        assert gone(killed.pid) and killed_payload.exists()  # its finally never ran
        os.utime(live_payload, (time.time() - 2 * 86400,) * 2)  # old, but its owner lives

        with HTCondorTaskRunner(backend="local", max_workers=1, job_dir=tmp_path / "jobs"):
            pass

        assert not killed_payload.exists(), "a dead owner's payload outlived the next runner"
        assert live_payload.exists(), "a live flow's payload was deleted"
        assert live.poll() is None
    finally:
        for process in (live, killed):
            stop_group(process, grace=10)


def test_a_payload_of_unknown_owner_is_judged_by_its_age(tmp_path):
    """No owner record, or one of another host: only the age rule can tell."""
    jobs = tmp_path / "jobs"
    made = {}
    for name, owner, age in [
        ("fresh-none", None, 0),
        ("stale-none", None, 2 * 86400),
        ("fresh-foreign", "elsewhere.example", 0),
        ("stale-foreign", "elsewhere.example", 2 * 86400),
    ]:
        directory = jobs / f"process-{name}" / "chunk-1"
        directory.mkdir(parents=True)
        if owner:
            record = {"host": owner, "pid": 1, "started": 0.0}
            (directory / OWNER_FILE).write_text(json.dumps(record))
        made[name] = directory / PAYLOAD_FILE
        made[name].write_bytes(b"payload")
        os.utime(made[name], (time.time() - age,) * 2)
    with HTCondorTaskRunner(backend="local", max_workers=1, job_dir=jobs):
        pass
    assert {name: path.exists() for name, path in made.items()} == {
        "fresh-none": True,
        "stale-none": False,
        "fresh-foreign": True,
        "stale-foreign": False,
    }
