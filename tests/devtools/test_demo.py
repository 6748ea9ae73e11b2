"""`cygno demo` as a user runs it: the whole local stack comes up, simulated runs arrive
as notifications and are processed; Ctrl+C in the middle of a run stops everything the
demo started, and the next `cygno demo --once` on the same data directory processes its
new runs and finishes the interrupted one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from cygno.devtools.local_stack import REPO_ROOT
from cygno.storage.catalog import Catalog
from tests.conftest import free_port
from tests.flows.harness import wait_for

pytestmark = pytest.mark.slow
CYGNO = str(Path(sys.executable).parent / "cygno")
SMALL = ["--runs", "1", "--events", "3", "--size", "256"]


def _demo_env(data: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CYGNO_", "PREFECT_"))
    }
    env.update(
        CYGNO_DATA_DIR=str(data),
        CYGNO_STACK_PREFECT_PORT=str(free_port()),
        CYGNO_BRIDGE_PORT=str(free_port()),
        # The worker looks for runs to start every 2 s, not 10: less waiting, same demo.
        PREFECT_WORKER_QUERY_SECONDS="2",
    )
    return env


def test_the_demo_talks_to_the_stack_not_to_an_ephemeral_server(tmp_path):
    """What `cygno demo` does before its first Prefect import points Prefect at the stack."""
    env = _demo_env(tmp_path / "data")
    probe = (
        "import sys\n"
        "from cygno.cli.stack import _stack\n"
        "stack = _stack(False)\n"
        "stack.adopt_environment()\n"
        "import cygno.devtools.demo\n"
        "from prefect.settings import get_current_settings\n"
        "print(get_current_settings().api.url, stack.addresses.api_url)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    used, expected = done.stdout.split()
    assert used == expected == f"http://127.0.0.1:{env['CYGNO_STACK_PREFECT_PORT']}/api"


def _running_process_run(api_url: str) -> bool:
    try:
        body = {"deployments": {"name": {"any_": ["process-run"]}}}
        runs = httpx.post(f"{api_url}/flow_runs/filter", json=body, timeout=10).json()
    except httpx.HTTPError:
        return False
    return any(run["state_type"] == "RUNNING" for run in runs)


@pytest.fixture
def demo_env(tmp_path):
    """The demo's environment; whatever a failed or timed-out demo left running is
    stopped afterwards (`cygno stack down` on the same data directory)."""
    env = _demo_env(tmp_path / "data")
    try:
        yield env
    finally:
        subprocess.run([CYGNO, "stack", "down"], env=env, capture_output=True, timeout=120)


# Two full demos (four runs, two stack start-ups): minutes, most of them waiting.
@pytest.mark.timeout(1500)
def test_demo_interrupted_mid_run_then_started_again_finishes_everything(tmp_path, demo_env):
    env = demo_env
    data = Path(env["CYGNO_DATA_DIR"])
    api_url = f"http://127.0.0.1:{env['CYGNO_STACK_PREFECT_PORT']}/api"

    # First demo: Ctrl+C while a run is being processed.
    with (tmp_path / "first.log").open("wb") as log:
        first = subprocess.Popen(
            [CYGNO, "demo", *SMALL], env=env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            wait_for(lambda: _running_process_run(api_url), timeout=400, what="a running run")
            time.sleep(2)
            first.send_signal(signal.SIGINT)
            assert first.wait(timeout=120) == 0
        finally:
            if first.poll() is None:
                first.kill()
                first.wait()
    assert not (data / "stack" / "state.json").exists()
    assert _processes_with_env(f"CYGNO_DATA_DIR={data}") == []

    # Second demo, same data directory: new runs and the interrupted one complete.
    result = subprocess.run(
        [CYGNO, "demo", "--once", *SMALL, "--timeout", "900"],
        env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=1000,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, (tmp_path / "first.log").read_text()[-3000:] + output[-6000:]
    assert f"Prefect UI        http://127.0.0.1:{env['CYGNO_STACK_PREFECT_PORT']}" in output
    assert "temporary server" not in output

    summary = Catalog(f"sqlite:///{data / 'catalog.db'}").summary()
    assert summary["raw_files"] == {"ingested": 4}  # two pedestal runs, two data runs
    assert summary["tape_copies"] == {"ok": 4}
    assert sum(summary["reco_outputs"].values()) == 2
    assert sum(summary["quality"].values()) == 2

    # Ctrl+C or --once: every service the stack started is gone, state file removed.
    state = data / "stack" / "state.json"
    assert not state.exists(), json.loads(state.read_text())
    assert _processes_with_env(f"CYGNO_DATA_DIR={data}") == []


def _processes_with_env(entry: str) -> list[str]:
    """Command lines of live processes whose environment holds ``entry``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if entry.encode() in (proc / "environ").read_bytes().split(b"\0"):
                found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
    return found
