"""`cygno demo --once` as a user runs it: the whole local stack comes up, simulated runs
arrive as notifications and are processed, and everything started is stopped again."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from cygno.devtools.local_stack import PREFECT_PORT, REPO_ROOT
from cygno.storage.catalog import Catalog

pytestmark = pytest.mark.slow


def _port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_demo_once_processes_runs_and_leaves_no_process_behind(tmp_path):
    if _port_in_use(PREFECT_PORT) or _port_in_use(4300):
        pytest.skip("ports 4200/4300 are taken (a local stack is running)")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CYGNO_", "PREFECT_"))
    }
    env["CYGNO_DATA_DIR"] = str(tmp_path / "data")
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "cygno"),
            "demo",
            "--once",
            "--runs",
            "2",
            "--events",
            "3",
            "--size",
            "256",
            "--timeout",
            "400",
        ],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert "Prefect UI        http://127.0.0.1:4200" in output

    summary = Catalog(f"sqlite:///{tmp_path / 'data' / 'catalog.db'}").summary()
    assert summary["raw_files"] == {"ingested": 3}  # the pedestal run and two data runs
    assert summary["tape_copies"] == {"ok": 3}
    assert sum(summary["reco_outputs"].values()) == 2
    assert sum(summary["quality"].values()) == 2
    assert output.count("arrival → quality flag") == 2  # one latency per data run

    # Ctrl+C or --once: every service the stack started is gone, state file removed.
    state = tmp_path / "data" / "stack" / "state.json"
    assert not state.exists(), json.loads(state.read_text())
    assert not _port_in_use(PREFECT_PORT) and not _port_in_use(4300)
    leftovers = _processes_with_env(f"CYGNO_DATA_DIR={env['CYGNO_DATA_DIR']}")
    assert leftovers == [], f"processes left behind: {leftovers}"


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
