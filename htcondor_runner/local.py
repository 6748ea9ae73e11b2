"""The ``local`` scheduler: the job command in local processes, logged like HTCondor.

It plays schedd and startd on one machine: at most ``max_workers`` jobs execute at
once, each in its own process group; progress is written to the job's user log in
HTCondor's format (000 submitted, 001 executing, 005 terminated, 012 held, 013
released, 009 aborted). Like a startd, it holds a job whose memory (resident set of
the job's process tree) exceeds ``request_memory`` with hold code 34. A job process
killed by a signal the scheduler did not send leaves no termination event and is
forgotten: to the runner it has vanished, as a job lost by a pool would.

Like an execute node without a shared filesystem, it runs each job in a new empty
directory holding only the job's ``input_files``, with exactly the job's environment
plus what HTCondor's starter adds (``_CONDOR_SCRATCH_DIR`` and ``TMPDIR`` pointing at
that directory), and brings back only the ``output_files``: a job that works here does
not depend on the flow host's files or environment. Jobs of this package's entry point
may run in warm workers (see :mod:`.warm`).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from . import warm
from .eventlog import HOLD_CODE_MEMORY, HOLD_CODE_USER, EventLogWriter
from .job import PARENT_PID_ENV
from .scheduler import JobId, JobSpec, SchedulerError

logger = logging.getLogger(__name__)

JOB_MODULE = f"{__package__}.job"
HOLD_CODE_STARTER = 13  # HTCondor's TransferInputError: the job could not be set up


class _ColdProcess:
    """One process for one job, with the warm worker's interface."""

    def __init__(self, spec: JobSpec, cwd: Path, env: dict[str, str]):
        with open(spec.output, "ab") as out, open(spec.error, "ab") as err:
            self.process = subprocess.Popen(
                [spec.executable, *spec.arguments],
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                cwd=cwd,
                env=env,
                start_new_session=True,
            )
        self.pid = self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


@dataclass
class _LocalJob:
    id: JobId
    spec: JobSpec
    log: EventLogWriter
    process: _ColdProcess | warm.WarmWorker | None = None
    removed: bool = False
    held: bool = False
    stopped: object = None  # the process the scheduler itself killed
    wake: threading.Event = field(default_factory=threading.Event)
    changed: threading.Event = field(default_factory=threading.Event)  # log written
    lock: threading.Lock = field(default_factory=threading.Lock)


def _tree_rss(pid: int) -> int:
    """Resident memory of a process and its children, in bytes."""
    total = 0
    with contextlib.suppress(psutil.NoSuchProcess):
        process = psutil.Process(pid)
        for proc in [process, *process.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                total += proc.memory_info().rss
    return total


class LocalScheduler:
    """Runs jobs as local processes, ``max_workers`` at a time.

    Args:
        warm_workers: run jobs of this package's entry point in warm workers.
        scratch_dir: where job sandboxes are made (default: the system's temp dir).
    """

    def __init__(
        self,
        max_workers: int | None = None,
        enforce_memory: bool = True,
        memory_poll_seconds: float = 0.1,
        *,
        warm_workers: bool = False,
        scratch_dir: str | os.PathLike[str] | None = None,
    ):
        self.max_workers = max_workers or os.cpu_count() or 1
        self.enforce_memory = enforce_memory
        self.memory_poll_seconds = memory_poll_seconds
        self.warm_workers = warm_workers
        self.scratch_dir = scratch_dir
        self._slots = threading.BoundedSemaphore(self.max_workers)
        self._jobs: dict[JobId, _LocalJob] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

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
            if job.process is not None and job.process.alive():
                job.stopped = job.process
                job.process.kill()
            job.log.held(reason, HOLD_CODE_USER)

    def remove(self, job_id: JobId, reason: str) -> None:
        with self._lock:
            job = self._jobs.pop(job_id, None)
        if job is None:
            return
        with job.lock:
            job.removed = True
            if job.process is not None and job.process.alive():
                job.process.kill()
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
            if job.process is not None and job.process.alive()
        ]

    # --- execution ------------------------------------------------------------------

    def _environment(self, spec: JobSpec, sandbox: Path) -> dict[str, str]:
        """The job's environment and what an HTCondor starter adds, nothing else."""
        env = dict(spec.environment)
        for name in warm.PER_JOB_ENV:
            env[name] = str(sandbox)
        env[PARENT_PID_ENV] = str(os.getpid())
        return env

    def _start(self, job: _LocalJob, sandbox: Path) -> _ColdProcess | warm.WarmWorker:
        spec = job.spec
        env = self._environment(spec, sandbox)
        if self.warm_workers and spec.arguments[:2] == ["-m", JOB_MODULE]:
            worker = warm.POOL.acquire(spec.executable, env)
            try:
                worker.start(spec.arguments[2:], sandbox, env, spec.output, spec.error)
            except OSError:  # it died while idle: a fresh one takes the job
                worker.kill()
                worker = warm.WarmWorker(spec.executable, env)
                worker.start(spec.arguments[2:], sandbox, env, spec.output, spec.error)
            return worker
        return _ColdProcess(spec, sandbox, env)

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
        sandbox = Path(tempfile.mkdtemp(prefix="htcondor-job-", dir=self.scratch_dir))
        try:
            with job.lock:
                if job.removed:
                    return "removed"
                if job.held:
                    return "held"
                try:
                    for name in spec.input_files:  # transfer_input_files
                        shutil.copy2(spec.submit_dir / name, sandbox / name)
                    job.process = self._start(job, sandbox)
                except OSError as exc:  # as a starter would: held, with the reason
                    job.held = True
                    job.log.held(f"Error from local starter: {exc}", HOLD_CODE_STARTER)
                    return "held"
                job.log.executing()
            outcome, return_code = self._watch(job)
            if outcome == "terminated":
                for name in spec.output_files:  # transfer_output_files
                    if (sandbox / name).exists():
                        shutil.move(sandbox / name, spec.submit_dir / name)
        finally:
            shutil.rmtree(sandbox, ignore_errors=True)
        with job.lock:
            if job.removed:  # removed while its output came back
                return "removed"
            process, job.process = job.process, None
            if outcome == "terminated":
                job.log.terminated(return_code)
            if outcome in ("terminated", "vanished"):
                with self._lock:
                    self._jobs.pop(job.id, None)
        if outcome == "terminated" and isinstance(process, warm.WarmWorker):
            warm.POOL.release(process, keep=self.max_workers)
        return outcome

    def _watch(self, job: _LocalJob) -> tuple[str, int]:
        """Wait for the job's process, holding it when it exceeds its memory request.

        Returns ("terminated" | "vanished" | "held" | "removed", return code)."""
        spec, process = job.spec, job.process
        assert process is not None
        limit = spec.request_memory_mb * 1024 * 1024
        while True:
            try:
                return_code = process.wait(self.memory_poll_seconds)
                break
            except subprocess.TimeoutExpired:
                pass
            if not self.enforce_memory:
                continue
            rss = _tree_rss(process.pid)
            if rss > limit:
                with job.lock:
                    if job.removed or job.held:
                        return ("removed" if job.removed else "held"), -1
                    process.kill()
                    job.held = True
                    job.log.held(
                        f"Job has gone over memory limit of {spec.request_memory_mb} megabytes. "
                        f"Peak usage: {rss // (1024 * 1024)} megabytes.",
                        HOLD_CODE_MEMORY,
                    )
                return "held", -1
        with job.lock:
            if job.removed:
                return "removed", return_code
            if job.held or job.stopped is process:
                return "held", return_code
        if return_code < 0:
            logger.warning(
                "local job %s was killed by signal %d outside the scheduler", job.id, -return_code
            )
            return "vanished", return_code
        return "terminated", return_code
