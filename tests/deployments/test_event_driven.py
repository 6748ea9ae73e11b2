"""End to end without anyone typing a command: a raw file lands in S3, its bucket
notification reaches the bridge, the deployment trigger of prefect.yaml starts
``process-run`` on a real process worker, and the run ends with catalog, tape, reco and
quality records.

Everything is real: moto's S3 server, the ephemeral Prefect server, ``prefect deploy``
on the repository's prefect.yaml, ``prefect worker start`` as a child process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from cygno.deployments.webapp import create_app
from cygno.devtools.demo import minio_notification, process_runs_of
from cygno.devtools.local_stack import REPO_ROOT, WORK_POOL
from tests.flows.harness import platform, s3_overrides, stop_group, wait_for

pytestmark = pytest.mark.slow
TOKEN = "e2e-bridge-token"


def _prefect(env: dict[str, str], *args: str) -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "prefect"), "--no-prompt", *args],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"prefect {' '.join(args)}:\n{result.stdout}{result.stderr}"


def _automation_loaded(name: str) -> bool:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return any(a.enabled for a in client.read_automations_by_name(name))


def _process_run_for(uri: str) -> list:
    return process_runs_of([uri])[uri]


@pytest.fixture
def worker_env(prefect_api, s3_server, tmp_path, monkeypatch):
    bucket = s3_server.new_bucket()
    with platform(
        tmp_path / "platform",
        monkeypatch,
        **s3_overrides(s3_server, bucket),
        CYGNO_BRIDGE_TOKEN=TOKEN,
    ) as plat:
        env = {
            **os.environ,
            **plat.env,
            "PREFECT_API_URL": prefect_api,
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            "PREFECT_WORKER_PREFETCH_SECONDS": "1",
        }
        yield plat, bucket, env


def test_notification_to_completed_process_run(worker_env, tmp_path):
    plat, bucket, env = worker_env
    _prefect(env, "work-pool", "create", WORK_POOL, "--type", "process", "--overwrite")
    _prefect(env, "deploy", "--all", "--prefect-file", str(REPO_ROOT / "prefect.yaml"))
    # The trigger only fires once the server has loaded its automation: wait for that.
    wait_for(lambda: _automation_loaded("process-run-on-raw-arrival"), what="the trigger")

    log = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen(
        [str(Path(sys.executable).parent / "prefect"), "worker", "start", "--pool", WORK_POOL],
        env=env,
        cwd=REPO_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        pedestal, data = plat.simulate(runs=1, events=4, first_run=1)
        app = create_app(plat.settings)
        with TestClient(app) as client:
            for run in (pedestal, data):
                body = minio_notification(bucket, run.key, run.checksums.size, "etag-1")
                response = client.post(
                    "/s3-events", json=body, headers={"Authorization": f"Bearer {TOKEN}"}
                )
                assert response.status_code == 200, response.text
            # A duplicate notification must not start a second run.
            body = minio_notification(bucket, data.key, data.checksums.size, "etag-1")
            client.post("/s3-events", json=body, headers={"Authorization": f"Bearer {TOKEN}"})

        uri = plat.store.uri(data.key)
        finished = wait_for(
            lambda: [r for r in _process_run_for(uri) if r.state and r.state.is_final()],
            timeout=420,
            interval=2,
            what=f"process-run of {uri}",
        )
        assert len(_process_run_for(uri)) == 1, "duplicate notification started a second run"
        assert finished[0].state.is_completed(), (
            f"{finished[0].state}\n{(tmp_path / 'worker.log').read_text()[-4000:]}"
        )
    finally:
        stop_group(worker)
        log.close()

    record = plat.catalog.run(data.run_number, "LNGS")
    assert record.raw is not None and record.raw.uri == uri and record.raw_state == "ingested"
    assert record.tape and record.tape[0].adler32 == record.raw.adler32
    assert record.tape_state == "ok" and record.tape[0].verified_at is not None
    assert len(record.reco_versions) == 1
    reco = record.reco[0]
    assert reco.events == 4 and plat.store.exists(plat.store.key_of(reco.uri))
    assert record.quality_flag(reco.reco_version) in {"good", "warning", "bad"}
