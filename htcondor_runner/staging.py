"""Who owns a job's submit directory, so payloads outlive no flow process.

A payload may hold presigned URLs; its runner deletes it when the task ends, however it
ends, unless the flow process itself dies (SIGKILL, OOM, a lost host). Each directory
therefore carries an owner record (host, pid, process start time) written before the
payload, and every runner that starts removes the payloads whose owner is gone from this
host. A pid reused by a later process has another start time, so it never passes for the
owner; a payload of another host (a shared job directory) is judged by its age only.
Never imports Prefect.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import psutil

OWNER_FILE = "owner.json"
PAYLOAD_FILE = "payload.pkl"
#: Start times of one process read twice agree to well within this (seconds).
START_TIME_TOLERANCE = 1.0


def _this_process() -> dict[str, object]:
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started": psutil.Process().create_time(),
    }


def claim(directory: Path) -> None:
    """Record this process as the owner of ``directory`` (before a payload goes in)."""
    record = directory / OWNER_FILE
    partial = directory / f".{OWNER_FILE}.{os.getpid()}"
    partial.write_text(json.dumps(_this_process()))
    os.replace(partial, record)


def owner_gone(directory: Path) -> bool | None:
    """Whether the process that owns ``directory`` has ended: True or False on its own
    host, None when unknown (no readable record, or another host's)."""
    try:
        owner = json.loads((directory / OWNER_FILE).read_text())
        host, pid, started = str(owner["host"]), int(owner["pid"]), float(owner["started"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if host != socket.gethostname():
        return None
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return True
        return abs(process.create_time() - started) > START_TIME_TOLERANCE
    except psutil.NoSuchProcess:
        return True
    except psutil.AccessDenied:
        return False  # a process we may not inspect exists: never delete under it


def remove_orphaned_payloads(job_dir: Path, max_age_seconds: float) -> int:
    """Delete the payloads under ``job_dir`` whose flow process is gone from this host,
    and those of unknown owner older than ``max_age_seconds``. Returns how many."""
    cutoff = time.time() - max_age_seconds
    removed = 0
    for path in job_dir.glob(f"*/*/{PAYLOAD_FILE}") if job_dir.is_dir() else ():
        try:
            gone = owner_gone(path.parent)
            if gone or (gone is None and path.stat().st_mtime < cutoff):
                path.unlink()
                removed += 1
        except FileNotFoundError:
            continue  # another runner removed it first
    return removed
