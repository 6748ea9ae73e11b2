"""The ``local`` scheduler: the job command in local processes, logged like HTCondor.

It plays schedd and startd on one machine: at most ``max_workers`` jobs execute at
once, each in its own process group; progress is written to the job's user log in
HTCondor's format (000 submitted, 001 executing, 005 terminated, 012 held, 013
released, 009 aborted). Like a startd, it holds a job whose memory (resident set of
the job's process tree) exceeds ``request_memory`` with hold code 34. A job process
killed by a signal the scheduler did not send leaves no termination event and is
forgotten: to the runner it has vanished, as a job lost by a pool would.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field

import psutil

from .eventlog import HOLD_CODE_MEMORY, HOLD_CODE_USER, EventLogWriter
from .job import PARENT_PID_ENV
from .scheduler import JobId, JobSpec, SchedulerError

logger = logging.getLogger(__name__)


@dataclass
class _LocalJob:
    id: JobId
    spec: JobSpec
    log: EventLogWriter
    process: subprocess.Popen | None = None
    removed: bool = False
    held: bool = False
    stopped: subprocess.Popen | None = None  # the process the scheduler itself killed
    wake: threading.Event = field(default_factory=threading.Event)
    changed: threading.Event = field(default_factory=threading.Event)  # log written
    lock: threading.Lock = field(default_factory=threading.Lock)


def _tree_rss(process: psutil.Process) -> int:
    """Resident memory of a process and its children, in bytes."""
    total = 0
    for proc in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            total += proc.memory_info().rss
    return total


def _kill_group(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


class LocalScheduler:
    """Runs jobs as local processes, ``max_workers`` at a time."""

    def __init__(
        self,
        max_workers: int | None = None,
        enforce_memory: bool = True,
        memory_poll_seconds: float = 0.1,
    ):
        self.max_workers = max_workers or os.cpu_count() or 1
        self.enforce_memory = enforce_memory
        self.memory_poll_seconds = memory_poll_seconds
        self._slots = threading.BoundedSemaphore(self.max_workers)
        self._jobs: dict[JobId, _LocalJob] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        # Jobs import what the flow process imports, from the same places.
        self._pythonpath = os.pathsep.join(p for p in sys.path if p)

    # --- Scheduler protocol ---------------------------------------------------------

    def submit(self, spec: JobSpec) -> JobId:
        job_id = JobId(next(self._ids))
        changed = threading.Event()
        log = EventLogWriter(spec.log, job_id.cluster, job_id.proc, on_write=changed.set)
        job = _LocalJob(job_id, spec, log, changed=changed)
        for path in (spec.output, spec.error):
            path.parent.mkdir(parents=True, exist_ok=True)
        job.log.submitted()
        with self._lock:
            self._jobs[job_id] = job
        threading.Thread(
            target=self._run, args=(job,), name=f"local-job-{job_id}", daemon=True
        ).start()
        return job_id

    def release(self, job_id: JobId) -> None:
        job = self._jobs.get(job_id)
        if job is None:
            raise SchedulerError(f"job {job_id} is not in the local queue")
        with job.lock:
            if not job.held:
                return
            job.held = False
            job.log.released("via LocalScheduler.release")
        job.wake.set()

    def hold(self, job_id: JobId, reason: str) -> None:
        """Stop a job and keep it queued until released (``condor_hold``)."""
        job = self._jobs.get(job_id)
        if job is None:
            raise SchedulerError(f"job {job_id} is not in the local queue")
        with job.lock:
            if job.held or job.removed:
                return
            job.held = True
            if job.process is not None and job.process.poll() is None:
                job.stopped = job.process
                _kill_group(job.process)
            job.log.held(reason, HOLD_CODE_USER)

    def remove(self, job_id: JobId, reason: str) -> None:
        with self._lock:
            job = self._jobs.pop(job_id, None)
        if job is None:
            return
        with job.lock:
            job.removed = True
            if job.process is not None and job.process.poll() is None:
                _kill_group(job.process)
            job.log.aborted(reason)
        job.wake.set()

    def is_queued(self, job_id: JobId) -> bool:
        return job_id in self._jobs

    def wait(self, job_id: JobId, timeout: float) -> None:
        """Return as soon as the job's log gets an event, or after ``timeout``."""
        job = self._jobs.get(job_id)
        if job is None:
            return
        job.changed.wait(timeout)
        job.changed.clear()

    def close(self) -> None:
        for job_id in list(self._jobs):
            self.remove(job_id, "local scheduler shut down")

    def running_pids(self) -> list[int]:
        """Process ids of the jobs executing now (for status and tests)."""
        return [
            job.process.pid
            for job in list(self._jobs.values())
            if job.process is not None and job.process.poll() is None
        ]

    # --- execution ------------------------------------------------------------------

    def _environment(self, spec: JobSpec) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = self._pythonpath
        env.update(spec.environment)
        env[PARENT_PID_ENV] = str(os.getpid())
        return env

    def _run(self, job: _LocalJob) -> None:
        while True:
            while not self._slots.acquire(timeout=0.2):
                if job.removed:
                    return
            try:
                outcome = self._execute(job)
            finally:
                self._slots.release()
            if outcome != "held":
                return
            job.wake.wait()
            job.wake.clear()
            if job.removed:
                return

    def _execute(self, job: _LocalJob) -> str:
        spec = job.spec
        with job.lock:
            if job.removed:
                return "removed"
            if job.held:
                return "held"
            with open(spec.output, "ab") as out, open(spec.error, "ab") as err:
                job.process = subprocess.Popen(
                    [spec.executable, *spec.arguments],
                    stdout=out,
                    stderr=err,
                    stdin=subprocess.DEVNULL,
                    env=self._environment(spec),
                    start_new_session=True,
                )
            job.log.executing()
        process = job.process
        limit = spec.request_memory_mb * 1024 * 1024
        watched = psutil.Process(process.pid) if self.enforce_memory else None
        while True:
            try:
                return_code = process.wait(timeout=self.memory_poll_seconds)
                break
            except subprocess.TimeoutExpired:
                pass
            if watched is None:
                continue
            rss = _tree_rss(watched)
            if rss > limit:
                with job.lock:
                    if job.removed or job.held:
                        return "removed" if job.removed else "held"
                    _kill_group(process)
                    process.wait()
                    job.held = True
                    job.log.held(
                        f"Job has gone over memory limit of {spec.request_memory_mb} megabytes. "
                        f"Peak usage: {rss // (1024 * 1024)} megabytes.",
                        HOLD_CODE_MEMORY,
                    )
                return "held"
        with job.lock:
            if job.removed:
                return "removed"
            if job.held or job.stopped is process:
                return "held"
            if return_code < 0:
                logger.warning(
                    "local job %s was killed by signal %d outside the scheduler",
                    job.id,
                    -return_code,
                )
            else:
                job.log.terminated(return_code)
            with self._lock:
                self._jobs.pop(job.id, None)
        return "terminated" if return_code >= 0 else "vanished"
