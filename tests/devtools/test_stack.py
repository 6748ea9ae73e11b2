"""The local stack as an operator meets it: a real `prefect server start` (scheduler,
automations, repossessor and all), prefect.yaml and deployments/automations.yaml applied,
a process worker and the event bridge, all on free ports under a temporary data dir.

- Every scheduled deployment gets scheduled runs from the server's own scheduler.
- A worker killed mid-run (with the flow run's process): the run ends Crashed through the
  heartbeat automation, its concurrency slot comes back, the next notification is
  processed, and the killed run's file completes exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest
import yaml

from cygno.devtools.demo import minio_notification
from cygno.devtools.local_stack import REPO_ROOT
from tests.conftest import free_port
from tests.flows.harness import Platform, platform, wait_for

pytestmark = pytest.mark.slow
TOKEN = "stack-test-token"


@dataclass
class Stack:
    plat: Platform
    env: dict[str, str]
    api_url: str
    bridge_url: str

    def cygno(self, *args: str) -> str:
        done = subprocess.run(
            [str(Path(sys.executable).parent / "cygno"), *args],
            env=self.env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=400,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def api(self, path: str, body: dict | None = None, attempts: int = 4):
        """POST to the stack's API; a loaded 2-core machine may answer slowly."""
        for attempt in range(attempts):
            try:
                response = httpx.post(f"{self.api_url}/{path}", json=body or {}, timeout=60)
                break
            except httpx.TimeoutException:
                if attempt == attempts - 1:
                    raise
        response.raise_for_status()
        return response.json()

    def notify(self, key: str, size: int) -> None:
        body = minio_notification("cygno-data", key, size, "etag")
        response = httpx.post(
            f"{self.bridge_url}/s3-events",
            json=body,
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=30,
        )
        response.raise_for_status()

    def process_runs(self, uri: str) -> list[dict]:
        runs = self.api(
            "flow_runs/filter",
            {"deployments": {"name": {"any_": ["process-run"]}}, "sort": "EXPECTED_START_TIME_ASC"},
        )
        return [r for r in runs if r["parameters"].get("raw_uri") == uri]


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("stack")
    prefect_port, bridge_port = free_port(), free_port()
    with pytest.MonkeyPatch.context() as monkeypatch, platform(root, monkeypatch) as plat:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("PREFECT_") or key == "PREFECT_SERVER_ANALYTICS_ENABLED"
        }
        env.update(
            plat.env,
            CYGNO_STACK_PREFECT_PORT=str(prefect_port),
            CYGNO_BRIDGE_PORT=str(bridge_port),
            CYGNO_BRIDGE_TOKEN=TOKEN,
            PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS="2",
            PREFECT_WORKER_QUERY_SECONDS="2",
        )
        stack = Stack(
            plat, env, f"http://127.0.0.1:{prefect_port}/api", f"http://127.0.0.1:{bridge_port}"
        )
        try:
            stack.cygno("stack", "up")
            yield stack
        finally:
            stack.cygno("stack", "down")


def test_the_scheduler_creates_runs_for_every_scheduled_deployment(stack):
    deployments = stack.api("deployments/filter", {"limit": 50})
    scheduled = {d["name"]: d["id"] for d in deployments if d["schedules"]}
    in_yaml = yaml.safe_load((REPO_ROOT / "prefect.yaml").read_text())["deployments"]
    assert set(scheduled) == {d["name"] for d in in_yaml if d.get("schedules")}
    assert {"tape-reconcile", "db-mirror", "sentinel"} <= set(scheduled)

    def auto_scheduled(deployment_id: str) -> list[dict]:
        body = {
            "deployments": {"id": {"any_": [deployment_id]}},
            "flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}},
        }
        return [run for run in stack.api("flow_runs/filter", body) if run["auto_scheduled"]]

    def runs_of_each():
        found = {name: auto_scheduled(deployment_id) for name, deployment_id in scheduled.items()}
        return found if all(found.values()) else None

    wait_for(runs_of_each, timeout=60, interval=2, what="scheduled runs of every deployment")


def _worker_and_descendants(plat: Platform) -> list[psutil.Process]:
    import json

    records = json.loads((plat.root / "stack" / "state.json").read_text())
    (worker,) = [r for r in records if r["name"] == "worker"]
    process = psutil.Process(worker["pid"])
    return [process, *process.children(recursive=True)]


@pytest.mark.e2e
def test_a_worker_killed_mid_run_crashes_the_run_which_then_completes_once(stack):
    pedestal, killed, following = stack.plat.simulate(runs=2, events=4, first_run=101)
    killed_uri = stack.plat.store.uri(killed.key)
    stack.notify(pedestal.key, pedestal.checksums.size)
    stack.notify(killed.key, killed.checksums.size)

    def running():
        runs = stack.process_runs(killed_uri)
        return runs and runs[-1]["state_type"] == "RUNNING" and runs[-1]

    victim = wait_for(running, timeout=300, interval=1, what="the process-run to start")
    resource = f"prefect.flow-run.{victim['id']}"
    wait_for(
        lambda: stack.api(
            "events/filter",
            {"filter": {"event": {"name": ["prefect.flow-run.heartbeat"]},
                        "resource": {"id": [resource]}}},
        )["events"],
        timeout=60, what="the run's first heartbeat",
    )  # fmt: skip

    # The host dies: the worker and the flow run's process, without a word.
    processes = _worker_and_descendants(stack.plat)
    for process in processes:
        process.send_signal(signal.SIGKILL)
    _gone, alive = psutil.wait_procs(processes, timeout=30)
    assert not alive

    def crashed():
        (run,) = stack.api("flow_runs/filter", {"flow_runs": {"id": {"any_": [victim["id"]]}}})
        return run["state_type"] in ("CRASHED", "COMPLETED", "FAILED") and run

    ended = wait_for(crashed, timeout=240, interval=2, what="the dead run to end")
    assert ended["state_type"] == "CRASHED", ended["state"]

    def slots_held() -> int:
        return sum(
            limit["active_slots"]
            for limit in stack.api("v2/concurrency_limits/filter", {})
            if limit["name"].startswith("deployment:")
        )

    # Every run the dead worker had (the pedestal's too, if it was still going) ends
    # Crashed the same way, and gives its slot back.
    wait_for(lambda: slots_held() == 0, timeout=180, interval=2, what="the slots to return")

    # A new worker (stack up starts what is not running, then runs the sentinel).
    stack.cygno("stack", "up")
    stack.notify(following.key, following.checksums.size)
    following_uri = stack.plat.store.uri(following.key)

    def finished(uri: str):
        """Its runs, once the latest is final and not Crashed (the sentinel restarts those)."""
        runs = stack.process_runs(uri)
        return runs and runs[-1]["state_type"] in ("COMPLETED", "FAILED") and runs

    # The following file is processed (a scheduled sentinel may have announced it before
    # its notification did; the flow is idempotent), and the killed one completes once.
    for uri in (following_uri, killed_uri):
        runs = wait_for(lambda u=uri: finished(u), timeout=400, interval=2, what=f"{uri}")
        assert runs[-1]["state_type"] == "COMPLETED", [run["state_type"] for run in runs]
    # Exactly one run took over from the dead one (a file announced twice, by the
    # sentinel and by its notification, may have had an earlier run too).
    after = [run for run in stack.process_runs(killed_uri) if run["created"] > victim["created"]]
    assert [run["state_type"] for run in after] == ["COMPLETED"]
    record = stack.plat.catalog.run(killed.run_number, "LNGS")
    assert len(record.reco) == 1 and record.reco[0].events == 4


@pytest.mark.e2e
def test_a_scheduled_db_mirror_run_completes_within_its_interval(stack):
    """The server's scheduler creates db-mirror runs every 180 s and the worker runs
    them: one has completed by now, or does within one interval."""
    (deployment,) = [
        d for d in stack.api("deployments/filter", {"limit": 50}) if d["name"] == "db-mirror"
    ]
    (interval,) = [
        s["schedule"]["interval"] for s in deployment["schedules"] if s["schedule"].get("interval")
    ]
    body = {
        "deployments": {"id": {"any_": [deployment["id"]]}},
        "flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}},
    }
    done = wait_for(
        lambda: [run for run in stack.api("flow_runs/filter", body) if run["auto_scheduled"]],
        timeout=interval + 60, interval=5, what="a scheduled db-mirror run to complete",
    )  # fmt: skip
    assert done
