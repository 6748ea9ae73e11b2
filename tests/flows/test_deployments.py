"""prefect.yaml applied to the ephemeral server as `cygno stack up` does it: deployments,
schedules, concurrency limits, and the event trigger of process-run with its dedup."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from prefect.events import emit_event

from cygno.events import RAW_ARRIVED
from tests.flows.harness import api_post, wait_for

REPO = Path(__file__).resolve().parents[2]
POOL = "cygno-process"


@pytest.fixture(scope="module")
def deployed(prefect_api: str) -> dict[str, dict]:
    # Deployed as the README says: without CYGNO_CODE_DIR, which each worker resolves.
    env = {k: v for k, v in os.environ.items() if k != "CYGNO_CODE_DIR"}
    env["PREFECT_API_URL"] = prefect_api
    prefect = str(Path(sys.executable).parent / "prefect")
    for argv in (
        [prefect, "--no-prompt", "work-pool", "create", POOL, "--type", "process", "--overwrite"],
        [prefect, "--no-prompt", "deploy", "--all", "--prefect-file", str(REPO / "prefect.yaml")],
    ):
        done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
    found = api_post("deployments/filter", {"limit": 50})
    return {d["name"]: d for d in found}


def test_every_deployment_is_on_the_process_pool_with_a_concurrency_limit(deployed):
    assert set(deployed) >= {
        "process-run",
        "reprocess-runs",
        "tape-reconcile",
        "db-mirror",
        "sentinel",
        "catalog-backup",
    }
    for deployment in deployed.values():
        assert deployment["work_pool_name"] == POOL
        assert deployment["global_concurrency_limit"]["limit"] >= 1
        # Repository paths, and a pull step each worker resolves to its own checkout:
        # nothing of the deploying machine.
        assert deployment["entrypoint"].startswith("flows/"), deployment["entrypoint"]
        assert deployment["path"] is None
        assert deployment["pull_steps"] == [
            {
                "prefect.deployments.steps.set_working_directory": {
                    "directory": "{{ $CYGNO_CODE_DIR }}"
                }
            }
        ]
    assert deployed["reprocess-runs"]["global_concurrency_limit"]["limit"] == 1
    schema = deployed["reprocess-runs"]["parameter_openapi_schema"]["properties"]
    assert {"first_run", "last_run", "tag", "reco_config"} <= set(schema)
    assert "reco_version" not in schema  # one parameter says what to produce


def test_schedules(deployed):
    (nightly,) = deployed["tape-reconcile"]["schedules"]
    assert nightly["schedule"]["cron"] == "30 2 * * *"
    assert nightly["schedule"]["timezone"] == "Europe/Rome"
    (every,) = deployed["sentinel"]["schedules"]
    assert every["schedule"]["interval"] == 300
    mirror = {bool(s["parameters"].get("full")): s for s in deployed["db-mirror"]["schedules"]}
    assert mirror[False]["schedule"]["interval"] == 180  # open and recent runs
    assert mirror[True]["schedule"]["cron"] == "15 3 * * *"  # nightly full pass
    assert not deployed["process-run"]["schedules"]
    (backup,) = deployed["catalog-backup"]["schedules"]
    assert backup["schedule"]["cron"] == "45 1 * * *"
    assert deployed["catalog-backup"]["parameters"] == {"keep_daily": 7, "keep_weekly": 4}


def _runs_for(deployment_id: str, raw_uri: str) -> list[dict]:
    runs = api_post("flow_runs/filter", {"deployments": {"id": {"any_": [deployment_id]}}})
    return [r for r in runs if r["parameters"].get("raw_uri") == raw_uri]


def _arrived(uri: str) -> None:
    emit_event(
        event=RAW_ARRIVED,
        resource={"prefect.resource.id": uri, "cygno.tag": "LNGS"},
        id=uuid.uuid4(),  # a new notification each time, like a re-sent S3 event
    )


def test_raw_arrival_starts_one_process_run_per_object(deployed):
    deployment = deployed["process-run"]
    automations = api_post("automations/filter", {})
    (automation,) = [a for a in automations if a["name"] == "process-run-on-raw-arrival"]
    assert automation["trigger"]["expect"] == [RAW_ARRIVED]
    # one bucket per object and upload (Prefect keeps for_each as a set: order is its own)
    assert sorted(automation["trigger"]["for_each"]) == ["cygno.etag", "prefect.resource.id"]
    uri = f"file:///data/cygno-data/raw/LNGS/run{uuid.uuid4().int % 90000 + 10000:05d}.mid.gz"

    def arrived_and_started():
        _arrived(uri)  # repeated until the automation is live: duplicates all along
        return _runs_for(deployment["id"], uri)

    wait_for(arrived_and_started, timeout=90, interval=2, what="a triggered process-run")
    _arrived(uri)  # one more duplicate, then a different object as a barrier
    other = uri.replace(".mid.gz", ".mid")
    _arrived(other)
    wait_for(lambda: _runs_for(deployment["id"], other), timeout=60, what="the barrier run")
    assert len(_runs_for(deployment["id"], uri)) == 1


def test_a_reupload_with_a_new_etag_starts_another_process_run(deployed):
    deployment = deployed["process-run"]
    uri = f"file:///data/cygno-data/raw/LNGS/run{uuid.uuid4().int % 90000 + 10000:05d}.mid.gz"

    def arrived(etag: str) -> None:
        emit_event(
            event=RAW_ARRIVED,
            resource={"prefect.resource.id": uri, "cygno.tag": "LNGS", "cygno.etag": etag},
            id=uuid.uuid4(),
        )

    def started(count: int):
        arrived("first-upload")  # repeated (duplicates) until the automation fires
        runs = _runs_for(deployment["id"], uri)
        return runs if len(runs) >= count else None

    wait_for(lambda: started(1), timeout=90, interval=2, what="the first upload's run")
    arrived("corrected-upload")
    wait_for(lambda: len(_runs_for(deployment["id"], uri)) >= 2 or None, timeout=60,
             what="the corrected upload's run")  # fmt: skip
    arrived("corrected-upload")  # a duplicate of the re-upload: no third run
    barrier = uri.replace(".mid.gz", ".mid")
    emit_event(event=RAW_ARRIVED, resource={"prefect.resource.id": barrier}, id=uuid.uuid4())
    wait_for(lambda: _runs_for(deployment["id"], barrier), timeout=60, what="the barrier run")
    assert len(_runs_for(deployment["id"], uri)) == 2


def _run_once(prefect_api: str, where: Path) -> None:
    """A process worker started in ``where`` (not the checkout) runs one flow run; the
    pull step takes it into CYGNO_CODE_DIR, this checkout."""
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "CYGNO_CODE_DIR": str(REPO)}
    prefect = str(Path(sys.executable).parent / "prefect")
    worker = subprocess.run(
        [prefect, "worker", "start", "--pool", POOL, "--run-once", "--type", "process"],
        cwd=where, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert worker.returncode == 0, worker.stdout + worker.stderr


def test_a_process_worker_runs_a_deployment_from_prefect_yaml(
    deployed, plat, prefect_api, tmp_path
):
    plat.simulate(runs=1, events=2)  # two logbook rows to mirror
    run = api_post(f"deployments/{deployed['db-mirror']['id']}/create_flow_run", {})
    _run_once(prefect_api, tmp_path)

    def finished():
        (found,) = api_post("flow_runs/filter", {"flow_runs": {"id": {"any_": [run["id"]]}}})
        return found if found["state_type"] in ("COMPLETED", "FAILED", "CRASHED") else None

    state = wait_for(finished, timeout=120, what="the worker's flow run")
    assert state["state_type"] == "COMPLETED", state["state"]
    assert plat.catalog.logbook(2) is not None


def test_the_readme_reprocess_example_runs_on_a_worker(deployed, plat, prefect_api, tmp_path):
    from cygno.flows.process_run import process_run
    from cygno.reco.config import load_config, reco_version

    (command,) = [
        line.strip()
        for line in (REPO / "README.md").read_text().splitlines()
        if line.startswith("prefect deployment run reprocess-runs")
    ]
    _, *data = plat.simulate(runs=2, events=2)  # runs 2 and 3, as in the example
    for run in data:
        process_run(plat.store.uri(run.key))
    env = {**os.environ, "PREFECT_API_URL": prefect_api}
    argv = [str(Path(sys.executable).parent / "prefect"), *command.split()[1:]]
    started = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert started.returncode == 0, started.stdout + started.stderr
    _run_once(prefect_api, tmp_path)

    version = reco_version(load_config("lnf"))
    for run in data:
        output = wait_for(
            lambda r=run: plat.catalog.reco_output(r.run_number, "LNGS", version),
            timeout=120, what=f"run {run.run_number} in {version}",
        )  # fmt: skip
        assert output.state == "done"
