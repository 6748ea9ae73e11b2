"""One ephemeral Prefect server for a test session, and a platform wired to tmp dirs.

Used by tests/flows/conftest.py and by the orchestration benchmark, so both run the
flows against a real Prefect API with everything else (store, catalog, logbook, tape)
under a temporary directory.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pytest


@contextmanager
def prefect_server(home: Path) -> Iterator[str]:
    """Start the test harness server with PREFECT_HOME (results, cache) under ``home``."""
    os.environ["PREFECT_HOME"] = str(home)
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    # Tests read events back: persist them every 0.5 s rather than every few seconds.
    os.environ["PREFECT_SERVER_SERVICES_EVENT_PERSISTER_FLUSH_INTERVAL"] = "0.5"
    from prefect.settings import (
        PREFECT_HOME,
        PREFECT_LOCAL_STORAGE_PATH,
        PREFECT_SERVER_ANALYTICS_ENABLED,
        get_current_settings,
        temporary_settings,
    )
    from prefect.testing.utilities import prefect_test_harness

    updates = {
        PREFECT_HOME: str(home),
        PREFECT_LOCAL_STORAGE_PATH: str(home / "storage"),
        PREFECT_SERVER_ANALYTICS_ENABLED: False,
    }
    with temporary_settings(updates=updates), prefect_test_harness(server_startup_timeout=60):
        yield str(get_current_settings().api.url)


def small_config(path: Path, base: str = "mc") -> Path:
    """A built-in configuration with the acceptance opened to the whole picture, so
    small simulated pictures (e.g. 256×256) are reconstructed like LIME's."""
    text = resources.files("cygno.reco").joinpath(f"configs/{base}.toml").read_text()
    text = re.sub(r"(?m)^x_min = \d+", "x_min = 0", text)
    text = re.sub(r"(?m)^x_max = \d+", "x_max = 1048576", text)
    text = re.sub(r'(?m)^name = ".*"', 'name = "small"', text)
    path.write_text(text)
    return path


@dataclass
class Platform:
    """The data side of the platform under one temporary directory."""

    root: Path
    env: dict[str, str]

    @property
    def settings(self):
        from cygno.settings import get_settings

        return get_settings()

    @property
    def store(self):
        from cygno.tasks import resources as r

        return r.store()

    @property
    def catalog(self):
        from cygno.tasks import resources as r

        return r.catalog()

    @property
    def logbook(self):
        from cygno.tasks import resources as r

        return r.logbook()

    @property
    def tape(self):
        from cygno.tasks import resources as r

        return r.tape()

    def simulate(self, runs: int = 1, events: int = 6, first_run: int = 1, **options):
        """A pedestal run, then ``runs`` data runs of ``events`` pictures, uploaded to
        ``raw/`` and logged in the DAQ logbook; returns the SimulatedRun list."""
        from cygno.reco.simulate.upload import simulate_and_upload

        options.setdefault("shape", (256, 256))
        options.setdefault("pedestal_events", 100)
        return simulate_and_upload(
            self.store, self.logbook, runs=runs, events=events, first_run=first_run, **options
        )

    def listing(self) -> dict[str, str]:
        """Every object in the store (key → adler32): what "changes nothing" compares."""
        store = self.store
        return {key: store.checksum(key).adler32 for key in sorted(store.list(""))}


def platform_env(root: Path, **overrides: str) -> dict[str, str]:
    root.mkdir(parents=True, exist_ok=True)
    env = {
        "CYGNO_DATA_DIR": str(root),
        "CYGNO_STORE_URL": (root / "store").as_uri(),
        "CYGNO_CATALOG_URL": f"sqlite:///{root / 'catalog.db'}",
        "CYGNO_DAQDB_URL": f"sqlite:///{root / 'daq.db'}",
        "CYGNO_TAPE_URL": (root / "tape").as_uri(),
        "CYGNO_TAPE_RECALL_SECONDS": "0.2",
        "CYGNO_EXECUTOR": "local",
        "CYGNO_WORKERS": "2",
        "CYGNO_CHUNK_EVENTS": "3",
        "CYGNO_RECO_CONFIG": str(small_config(root / "small.toml")),
        "CYGNO_PUBLIC_URL": "http://127.0.0.1:4300",
        # where a process worker's pull step (prefect.yaml) finds the flows
        "CYGNO_CODE_DIR": str(Path(__file__).resolve().parents[2]),
    }
    env.update(overrides)
    return env


def s3_overrides(s3_server, bucket: str) -> dict[str, str]:
    """Settings that put the store in ``bucket`` on the moto S3 server."""
    return {
        "CYGNO_STORE_URL": f"s3://{bucket}",
        "CYGNO_S3_ENDPOINT_URL": s3_server.endpoint_url,
        "CYGNO_S3_ACCESS_KEY_ID": s3_server.key,
        "CYGNO_S3_SECRET_ACCESS_KEY": s3_server.secret,
    }


@contextmanager
def platform(root: Path, monkeypatch: pytest.MonkeyPatch, **overrides: str) -> Iterator[Platform]:
    """Point the settings (and every job process the runner starts) at ``root``."""
    from cygno.settings import get_settings

    env = platform_env(root, **overrides)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        plat = Platform(root, env)
        plat.logbook.create_schema()
        yield plat
    finally:
        get_settings.cache_clear()


def wait_for(probe, timeout: float = 60.0, interval: float = 0.5, what: str = "condition"):
    """Poll ``probe()`` until it returns something truthy (and return that)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def api_post(path: str, body: dict):
    """POST to the current Prefect API (the test server) and return the JSON answer."""
    import httpx
    from prefect.settings import get_current_settings

    url = f"{str(get_current_settings().api.url).rstrip('/')}/{path.lstrip('/')}"
    response = httpx.post(url, json=body, timeout=30)
    response.raise_for_status()
    return response.json()


def events_named(name: str, resource_id: str | None = None) -> list[dict]:
    """Events the Prefect server has stored under ``name`` (optionally for one resource)."""
    event_filter: dict = {"event": {"name": [name]}}
    if resource_id:
        event_filter["resource"] = {"id": [resource_id]}
    return api_post("events/filter", {"filter": event_filter, "limit": 50})["events"]


def artifact(key: str) -> dict:
    """The latest artifact with this key."""
    body = {"artifacts": {"key": {"any_": [key]}}, "limit": 1, "offset": 0, "sort": "UPDATED_DESC"}
    (found,) = api_post("artifacts/filter", body)
    return found


def gone(pid: int, timeout: float = 30.0) -> bool:
    """Whether process ``pid`` ends (or is left a zombie) within ``timeout`` seconds: a
    killed process takes a moment to go, longer on a loaded machine."""
    import psutil

    try:
        process = psutil.Process(pid)
        process.wait(timeout)
    except psutil.NoSuchProcess:
        return True
    except psutil.TimeoutExpired:
        try:
            return process.status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True
    return True


def stop_group(process, grace: float = 30.0) -> None:
    """End a child started with ``start_new_session=True`` and everything in its process
    group: SIGTERM, then SIGKILL after ``grace`` seconds; return only once all are gone,
    so nothing outlives the test (a worker that ignores SIGTERM must not take the next
    test's flow run)."""
    import contextlib
    import signal
    import subprocess

    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, grace)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # children left in the group
    process.wait()
