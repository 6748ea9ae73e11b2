"""Warm workers for the ``local`` backend: job processes that outlive their job.

A cold job pays for its interpreter and its imports (for a numba project, seconds of
CPU) every time. A warm worker is ``python -m <package>.warm``: it reads one job at a
time from its stdin, runs it exactly as ``<package>.job`` would (same entry point, in
the job's own sandbox directory, with the job's environment and its stdout/stderr
files), answers the exit code on its stdout, and keeps what it imported for the next
job. Workers are shared by every local scheduler of the process, so they stay warm
across chunks and runs; a worker serves only jobs whose environment it was started
with (the interpreter reads ``PYTHONPATH`` and thread counts once).

A worker is one job's process while it runs: hold, remove, a memory overrun or a
kill end the worker with the job (a killed worker's job has vanished, as a killed cold
job). Idle workers exit with the flow process (at exit, or within a second if it is
killed).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path

#: Set per job by the scheduler; not part of what makes a worker fit a job.
PER_JOB_ENV = frozenset({"_CONDOR_SCRATCH_DIR", "TMPDIR", "TMP", "TEMP"})
#: An idle worker older than this is ended at the pool's next use (its memory back).
IDLE_SECONDS = 600.0


class WarmWorker:
    """One long-lived job process and its control pipes."""

    def __init__(self, executable: str, env: Mapping[str, str]):
        self.key = _key(executable, env)
        self.process = subprocess.Popen(
            [executable, "-m", __spec__.name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=dict(env),
            cwd=tempfile.gettempdir(),
            start_new_session=True,
        )
        self._pending = b""
        self.idle_since = time.monotonic()

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def start(self, argv: list[str], cwd: Path, env: Mapping[str, str], out: Path, err: Path):
        request = {"argv": argv, "cwd": str(cwd), "env": dict(env)}
        request |= {"stdout": str(out), "stderr": str(err)}
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(request).encode() + b"\n")
        self.process.stdin.flush()

    def wait(self, timeout: float) -> int:
        """The job's exit code; the worker's negative signal number if it died with the
        job. Raises ``subprocess.TimeoutExpired`` while the job runs."""
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        while b"\n" not in self._pending:
            ready, _, _ = select.select([fd], [], [], timeout)
            if not ready:
                raise subprocess.TimeoutExpired(self.process.args, timeout)
            chunk = os.read(fd, 4096)
            if not chunk:  # the worker died
                return self.process.wait()
            self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        return int(json.loads(line)["rc"])

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


def _key(executable: str, env: Mapping[str, str]) -> tuple:
    return executable, tuple(sorted((k, v) for k, v in env.items() if k not in PER_JOB_ENV))


class WarmPool:
    """Idle workers by (interpreter, environment), shared by the whole process."""

    def __init__(self) -> None:
        self._idle: dict[tuple, list[WarmWorker]] = {}
        self._lock = threading.Lock()
        atexit.register(self.close)

    def acquire(self, executable: str, env: Mapping[str, str]) -> WarmWorker:
        self._reap()
        key = _key(executable, env)
        with self._lock:
            idle = self._idle.get(key, [])
            while idle:
                worker = idle.pop()
                if worker.alive():
                    return worker
        return WarmWorker(executable, env)

    def release(self, worker: WarmWorker, keep: int) -> None:
        """Keep a worker that finished its job for the next one (at most ``keep`` idle)."""
        with self._lock:
            idle = self._idle.setdefault(worker.key, [])
            if worker.alive() and len(idle) < keep:
                worker.idle_since = time.monotonic()
                idle.append(worker)
                return
        worker.kill()

    def _reap(self) -> None:
        limit = time.monotonic() - IDLE_SECONDS
        with self._lock:
            old = [w for idle in self._idle.values() for w in idle if w.idle_since < limit]
            for idle in self._idle.values():
                idle[:] = [w for w in idle if w.idle_since >= limit]
        for worker in old:
            worker.kill()

    def idle_pids(self) -> list[int]:
        with self._lock:
            return [w.pid for workers in self._idle.values() for w in workers]

    def close(self) -> None:
        with self._lock:
            workers = [w for idle in self._idle.values() for w in idle]
            self._idle.clear()
        for worker in workers:
            worker.kill()


POOL = WarmPool()


# --- the worker process ------------------------------------------------------------------


def _run_one(request: dict, idle_dir: str) -> int:
    from .job import main as job_main

    out = os.open(request["stdout"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    err = os.open(request["stderr"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    saved = os.dup(1), os.dup(2)
    os.chdir(request["cwd"])
    sys.path[0] = request["cwd"]  # as `python -m` started in the sandbox would have it
    os.environ.clear()
    os.environ.update(request["env"])
    tempfile.tempdir = None  # the job's TMPDIR, not the last one's
    os.dup2(out, 1)
    os.dup2(err, 2)
    try:
        return job_main(request["argv"])
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (out, err, *saved):
            os.close(fd)
        os.chdir(idle_dir)
        sys.path[0] = idle_dir


def main() -> None:
    from .job import watch_parent

    # fd 1 becomes each job's stdout: answers go through a private copy of it.
    control = os.fdopen(os.dup(1), "w", buffering=1)
    idle_dir = os.getcwd()
    watch_parent()
    for line in sys.stdin:
        rc = _run_one(json.loads(line), idle_dir)
        control.write(json.dumps({"rc": rc}) + "\n")


if __name__ == "__main__":
    main()
