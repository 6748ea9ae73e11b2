"""Notifications per second turned into flow runs, on the local stack's Prefect server.

    rate = notifications / seconds until the server holds that many process-run flow runs

Each notification is one S3 record POSTed to the bridge, as MinIO sends them; the
deployment trigger of prefect.yaml turns each into a flow run. The work pool is paused,
so what is measured is the bridge → events → trigger → flow-run path, not execution.
Measured on the server's default SQLite (the baseline) and on the local PostgreSQL
(`cygno stack up --postgres`), in the same run; the ratio is printed.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests.*

from tests.deployments.test_event_bridge import notification, record

NOTIFICATIONS = int(os.environ.get("CYGNO_BENCH_NOTIFICATIONS", "200"))
TOKEN = "bench-bridge-token"
#: Stop waiting when no new flow run appeared for this long (a lost trigger is a result).
STALL_SECONDS = 90.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _flow_runs(api_url: str) -> int | None:
    """process-run flow runs on the server; None when it is too busy to answer in 60 s
    (SQLite under a burst: that is part of what is measured)."""
    body = {"flows": {"name": {"any_": ["process-run"]}}}
    try:
        answer = httpx.post(f"{api_url}/flow_runs/count", json=body, timeout=60)
    except httpx.TimeoutException:
        return None
    answer.raise_for_status()
    return int(answer.json())


def _measure(tmp_path: Path, monkeypatch, database: str | None) -> float:
    from cygno.devtools.local_stack import WORK_POOL, LocalStack
    from cygno.settings import get_settings

    monkeypatch.setenv("CYGNO_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CYGNO_STACK_PREFECT_PORT", str(_free_port()))
    monkeypatch.setenv("CYGNO_BRIDGE_PORT", str(_free_port()))
    monkeypatch.setenv("CYGNO_BRIDGE_TOKEN", TOKEN)
    get_settings.cache_clear()
    stack = LocalStack(get_settings(), prefect_database_url=database)
    log = lambda m: print(f"  [{database or 'sqlite'}] {m}")  # noqa: E731
    try:
        addresses = stack.up(log=log)
        stack._prefect(stack.environment(), log, "work-pool", "pause", WORK_POOL)
        auth = {"Authorization": f"Bearer {TOKEN}"}
        start = time.perf_counter()
        with httpx.Client(timeout=30) as client:
            for n in range(NOTIFICATIONS):
                body = notification(
                    record(f"raw/LNGS/run{10_000 + n:05d}.mid.gz", etag=f"{n:032x}")
                )
                answer = client.post(f"{addresses.bridge_url}/s3-events", json=body, headers=auth)
                assert answer.status_code == 200 and answer.json()["accepted"], answer.text
        posted = time.perf_counter() - start
        made, seconds = 0, posted
        while made < NOTIFICATIONS and time.perf_counter() - start - seconds < STALL_SECONDS:
            if (now := _flow_runs(addresses.api_url) or 0) > made:
                made, seconds = now, time.perf_counter() - start
            time.sleep(0.5)
        print(
            f"  [{database or 'sqlite'}] {NOTIFICATIONS} notifications posted in {posted:.1f} s, "
            f"{made} flow runs after {seconds:.1f} s: {made / seconds:.2f} /s"
        )
        return made / seconds
    finally:
        stack.down(log=log)
        get_settings.cache_clear()


@pytest.mark.bench
def test_notifications_per_second_into_flow_runs(tmp_path, monkeypatch):
    if not os.environ.get("CYGNO_TEST_POSTGRES_URL"):
        pytest.skip("CYGNO_TEST_POSTGRES_URL is not set: no local PostgreSQL to compare")
    from cygno.devtools.local_stack import ensure_postgres_database

    database = "postgresql+asyncpg://postgres@127.0.0.1:5432/cygno_bench_prefect"
    ensure_postgres_database(database)
    baseline = _measure(tmp_path / "sqlite", monkeypatch, None)
    postgres = _measure(tmp_path / "postgres", monkeypatch, database)
    print(
        f"notifications → flow runs: SQLite {baseline:.1f}/s, PostgreSQL {postgres:.1f}/s "
        f"(ratio {postgres / baseline:.2f})"
    )
