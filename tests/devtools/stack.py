"""The local stack as an operator starts it (`cygno stack up`), for the stack tests.

A real `prefect server start` (scheduler, automations, repossessor and all), prefect.yaml
and deployments/automations.yaml applied, a process worker and the event bridge, all on
free ports under a temporary data dir. The Prefect server runs on a fresh PostgreSQL
database when CYGNO_TEST_POSTGRES_URL is set (SQLite stalls writes under a loaded
machine), else on SQLite. `cygno stack down` waits until every process it ends is gone.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest
import sqlalchemy as sa

from cygno.devtools.demo import minio_notification
from cygno.devtools.local_stack import REPO_ROOT
from tests.conftest import free_port, fresh_database
from tests.flows.harness import Platform, platform, wait_for

TOKEN = "stack-test-token"
FINAL = {"COMPLETED", "FAILED", "CANCELLED", "CRASHED"}


@dataclass
class Stack:
    plat: Platform
    env: dict[str, str]
    api_url: str
    bridge_url: str
    up_args: tuple[str, ...]

    def cygno(self, *args: str) -> str:
        done = subprocess.run(
            [str(Path(sys.executable).parent / "cygno"), *args],
            env=self.env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=400,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def up(self) -> None:
        """`cygno stack up`: starts what is not running, applies the deployments again."""
        self.cygno("stack", "up", *self.up_args)

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
        """The bucket's notification of an upload, with the object's real ETag (as the
        sentinel announces it: one flow run per file, whichever announces it first)."""
        body = minio_notification("cygno-data", key, size, self.plat.store.etag(key))
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

    def settle(self) -> None:
        """Wait for the sentinel run `stack up` started to end, so it announces no file
        the test is about to upload (a second run for a file the test notifies)."""

        def ended() -> bool:
            runs = self.api("flow_runs/filter", {"deployments": {"name": {"any_": ["sentinel"]}}})
            started = [run for run in runs if not run["auto_scheduled"]]
            return bool(started) and all(run["state"]["type"] in FINAL for run in started)

        wait_for(ended, timeout=180, interval=1, what="the sentinel run of stack up")

    def worker_and_descendants(self) -> list[psutil.Process]:
        records = json.loads((self.plat.root / "stack" / "state.json").read_text())
        (worker,) = [r for r in records if r["name"] == "worker"]
        process = psutil.Process(worker["pid"])
        return [process, *process.children(recursive=True)]


@contextlib.contextmanager
def _prefect_database(tmp_path: Path) -> Iterator[tuple[str, ...]]:
    """`stack up` arguments for a fresh PostgreSQL database (dropped on exit), when the
    test server is configured; none (SQLite in the data dir) otherwise."""
    if not os.environ.get("CYGNO_TEST_POSTGRES_URL"):
        yield ()
        return
    with fresh_database("postgres", tmp_path) as url:
        asyncpg_url = sa.make_url(url).set(drivername="postgresql+asyncpg")
        yield ("--postgres-url", asyncpg_url.render_as_string(hide_password=False))


@contextlib.contextmanager
def running_stack(tmp_path_factory: pytest.TempPathFactory, **settings: str) -> Iterator[Stack]:
    """`cygno stack up` under a temporary data dir, with extra CYGNO_*/PREFECT_* settings
    for its services; `cygno stack down` at the end, even when `up` failed halfway."""
    root = tmp_path_factory.mktemp("stack")
    prefect_port, bridge_port = free_port(), free_port()
    with (
        pytest.MonkeyPatch.context() as monkeypatch,
        platform(root, monkeypatch) as plat,
        _prefect_database(root) as up_args,
    ):
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
            # Events (heartbeats) readable through the API within a second.
            PREFECT_SERVER_SERVICES_EVENT_PERSISTER_FLUSH_INTERVAL="0.5",
            **settings,
        )
        stack = Stack(
            plat,
            env,
            f"http://127.0.0.1:{prefect_port}/api",
            f"http://127.0.0.1:{bridge_port}",
            up_args,
        )
        try:
            stack.up()
            yield stack
        finally:
            stack.cygno("stack", "down")
