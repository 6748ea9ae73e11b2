"""``HTCondorTaskRunner``: Prefect tasks whose function calls run as HTCondor jobs.

The Prefect task engine stays on the flow host for every submitted task (in a thread,
as with ``ThreadPoolTaskRunner``), so states, retries, timeouts, caching and logs are
Prefect's own. Only the task's function call travels: the runner gives the engine a
copy of the task whose ``fn`` is a proxy that writes the call to a payload file,
submits ``python -m <this package>.job payload.pkl result.pkl`` to a scheduler backend
(the payload travels in the job's input sandbox, the result in its output sandbox),
follows the job's HTCondor user log with ``htcondor2.JobEventLog`` (the same code path
for the ``htcondor`` and ``local`` backends), streams the job's stdout/stderr into the
task run log, applies the hold policy, and returns the value or raises the remote
exception.

Policies: a job held for memory is removed and resubmitted with twice the memory (up to
``max_memory_mb``); any other hold is released up to ``max_releases`` times, then the job
is removed and the task fails with the hold reason; a job the scheduler no longer knows
without a termination event has vanished and fails the task (so Prefect's retries
apply); cancelling the flow run (runner shutdown after an error, ``cancel_all``, a future's
``cancel``) removes its jobs.

This package imports nothing of the project that uses it: any Prefect project can carry it.
"""

from __future__ import annotations

import concurrent.futures
import copy
import functools
import importlib
import os
import pickle
import re
import shutil
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterable
from contextvars import copy_context
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import htcondor2
from prefect._internal.uuid7 import uuid7
from prefect.futures import PrefectConcurrentFuture, PrefectFuture
from prefect.task_runners import TaskRunner

from . import interrupt, payload
from .eventlog import HOLD_CODE_MEMORY
from .options import RunnerOptions
from .scheduler import JobId, JobSpec, Scheduler
from .staging import PAYLOAD_FILE, claim, remove_orphaned_payloads

if TYPE_CHECKING:
    import logging

    from prefect.client.schemas.objects import RunInput
    from prefect.tasks import Task

JOB_MODULE = f"{__package__}.job"
RESULT_FILE = "result.pkl"


class RemoteJobError(Exception):
    """The task's function raised in the job; carries the remote traceback text."""

    def __init__(self, job: str, exc_type: str, message: str, remote_traceback: str):
        self.job = job
        self.exc_type = exc_type
        self.remote_message = message
        self.remote_traceback = remote_traceback
        super().__init__(
            f"{exc_type}: {message} (raised in job {job})\n"
            f"Remote traceback:\n{remote_traceback.rstrip()}"
        )

    def __reduce__(self) -> tuple[type, tuple[str, str, str, str]]:
        # Prefect pickles a failed task's exception when it persists results.
        return type(self), (self.job, self.exc_type, self.remote_message, self.remote_traceback)


class JobFailedError(RuntimeError):
    """The job ran but produced no result (non-zero exit, result missing)."""


class JobHeldError(RuntimeError):
    """The job was held and policy removed it; the message has the hold reason."""


class JobVanishedError(RuntimeError):
    """The scheduler lost the job: no longer queued and no termination event."""


class JobRemovedError(RuntimeError):
    """The job was removed (flow run cancelled, runner shut down, future cancelled)."""


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")[:80] or "job"


def _resolve(reference: str) -> Callable[..., Any]:
    """``"package.module:function"`` → the function."""
    module, _, name = reference.partition(":")
    if not name:
        raise ValueError(f"prepare_call must be 'module:function', not {reference!r}")
    return getattr(importlib.import_module(module), name)


def _is_memory_hold(code: int, reason: str) -> bool:
    return code == HOLD_CODE_MEMORY or "memory" in reason.lower()


class _Tail:
    """New complete lines of a growing file (a job's stdout or stderr)."""

    def __init__(self, path: Path):
        self.path = path
        self._offset = 0
        self._partial = b""

    def lines(self, final: bool = False) -> list[str]:
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self._offset)
                data = handle.read()
        except FileNotFoundError:
            data = b""
        self._offset += len(data)
        data = self._partial + data
        *complete, self._partial = data.split(b"\n")
        if final and self._partial:
            complete.append(self._partial)
            self._partial = b""
        return [line.decode(errors="replace") for line in complete]


@dataclass
class _Active:
    """A job the runner is following, so shutdown and cancel can remove it."""

    job: JobId
    scheduler: Scheduler


class HTCondorFuture(PrefectConcurrentFuture[Any]):
    """A task run future whose ``cancel()`` also removes the run's job."""

    def __init__(self, task_run_id: uuid.UUID, wrapped_future: concurrent.futures.Future, runner):
        super().__init__(task_run_id, wrapped_future)
        self._runner = runner

    def cancel(self) -> bool:
        """Cancel the task run: drop it if not started, remove its job if running."""
        if self.wrapped_future.cancel():
            return True
        if self.wrapped_future.done():
            return False
        return self._runner._remove_job(self.task_run_id, "task run future cancelled", True)


class HTCondorTaskRunner(TaskRunner[HTCondorFuture]):
    """Run each submitted task's function call as an HTCondor (or local) job.

    ``HTCondorTaskRunner(RunnerOptions(backend="htcondor", ...))``, or the same fields
    as keywords: ``HTCondorTaskRunner(backend="local", max_workers=2)``.
    """

    def __init__(self, options: RunnerOptions | None = None, **fields: Any):
        super().__init__()
        self.options = replace(options, **fields) if options else RunnerOptions(**fields)
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._scheduler: Scheduler | None = None
        self._active: dict[uuid.UUID, _Active] = {}
        self._cancelled: set[uuid.UUID] = set()  # cancelled before their job registered
        self._cancel_events: dict[uuid.UUID, threading.Event] = {}
        self._lock = threading.Lock()
        self._duplicates: weakref.WeakSet[HTCondorTaskRunner] = weakref.WeakSet()
        self._closing = False
        self._flow_run: Any = None

    # --- TaskRunner API -------------------------------------------------------------

    def duplicate(self) -> Self:
        twin = type(self)(self.options)
        # The flow engine cancels through the flow's own runner instance on SIGTERM,
        # while the jobs belong to the duplicate it entered: keep a way from one to other.
        self._duplicates.add(twin)
        return twin

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HTCondorTaskRunner) and self.options == other.options

    __hash__ = object.__hash__

    def __getstate__(self) -> dict[str, Any]:
        return {"options": self.options}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["options"])

    def __enter__(self) -> Self:
        super().__enter__()
        interrupt.bound_exit_after_interrupt()
        o = self.options
        remove_orphaned_payloads(o.job_dir, o.payload_max_age_seconds)
        threads = 2 * o.max_workers if o.backend == "local" else o.max_workers
        self._closing = False
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=threads, thread_name_prefix="htcondor-task"
        )
        self._scheduler = self._make_scheduler()
        return self

    def __exit__(self, exc_type: Any, exc_value: Any, traceback: Any) -> None:
        # The flow engine catches the flow function's exception before it closes the
        # runner, so a failed (or retrying, crashed, cancelled) flow run is recognised
        # by its state: its jobs are removed instead of waited for.
        state = self._flow_run.state if self._flow_run is not None else None
        if exc_type is not None or (
            state is not None and not (state.is_running() or state.is_completed())
        ):
            self.cancel_all()
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        if self._scheduler is not None:
            self._scheduler.close()
            self._scheduler = None
        super().__exit__(exc_type, exc_value, traceback)

    def cancel_all(self) -> None:
        """Remove every job of this runner (and of its duplicates): the flow run ends."""
        self._closing = True
        for twin in list(self._duplicates):
            twin.cancel_all()
        for event in list(self._cancel_events.values()):
            event.set()
        with self._lock:
            task_runs = list(self._active)
        for task_run_id in task_runs:
            self._remove_job(task_run_id, "flow run cancelled or shut down")
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    def submit(
        self,
        task: Task[Any, Any],
        parameters: dict[str, Any],
        wait_for: Iterable[PrefectFuture[Any]] | None = None,
        dependencies: dict[str, set[RunInput]] | None = None,
    ) -> HTCondorFuture:
        if not self._started or self._executor is None:
            raise RuntimeError("Task runner is not started")
        if task.isasync or task.isgenerator:
            raise TypeError(
                f"HTCondorTaskRunner runs plain functions; task {task.name!r} is async or a "
                "generator"
            )
        from prefect.task_engine import run_task_sync

        if self._flow_run is None:
            from prefect.context import FlowRunContext

            flow_ctx = FlowRunContext.get()
            self._flow_run = flow_ctx.flow_run if flow_ctx else None
        task_run_id = uuid7()
        # Set by cancel_all: a task run that has not started its job yet never will.
        cancel_event = self._cancel_events[task_run_id] = threading.Event()
        remote = copy.copy(task)
        remote.fn = self._proxy(task.fn)
        future = self._executor.submit(
            copy_context().run,
            run_task_sync,
            task=remote,
            task_run_id=task_run_id,
            parameters=parameters,
            wait_for=wait_for,
            return_type="state",
            dependencies=dependencies,
            context=dict(cancel_event=cancel_event),
        )
        future.add_done_callback(lambda _: self._cancel_events.pop(task_run_id, None))
        return HTCondorFuture(task_run_id, future, self)

    # --- the travelling call --------------------------------------------------------

    def _proxy(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def call_as_job(*args: Any, **kwargs: Any) -> Any:
            return self._call_remotely(fn, args, kwargs)

        return call_as_job

    def _make_scheduler(self) -> Scheduler:
        o = self.options
        if o.backend == "local":
            from .local import LocalScheduler

            return LocalScheduler(
                max_workers=o.max_workers, warm_workers=o.warm_workers, scratch_dir=o.scratch_dir
            )
        from .condor import HTCondorScheduler

        return HTCondorScheduler(
            schedd_name=o.schedd_name,
            collector=o.collector,
            spool=bool(o.spool),
            token_file=o.token_file,
            condor_config=o.condor_config,
            poll_seconds=o.poll_seconds,
        )

    def job_environment(self) -> dict[str, str]:
        """The job's whole environment, the same for a local and a pool job: the
        ``pass_env`` names found in the flow's environment, thread counts matching
        ``request_cpus``, then ``environment``."""
        o = self.options
        env = {name: os.environ[name] for name in o.pass_env if name in os.environ}
        threads = str(o.request_cpus)
        env.setdefault("OMP_NUM_THREADS", threads)
        env.setdefault("NUMBA_NUM_THREADS", threads)
        env.update(o.environment)
        return env

    def _call_remotely(self, fn: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
        from prefect.context import FlowRunContext, TaskRunContext
        from prefect.logging import get_run_logger

        task_ctx = TaskRunContext.get()
        flow_ctx = FlowRunContext.get()
        if task_ctx is None:
            raise RuntimeError("HTCondorTaskRunner's proxy runs only inside a task run")
        task_run = task_ctx.task_run
        logger = get_run_logger()
        batch = _safe_name(flow_ctx.flow_run.name if flow_ctx and flow_ctx.flow_run else "adhoc")
        attempt = f"{task_run.id}-{task_run.run_count}"
        workdir = self.options.job_dir / batch / f"{_safe_name(task_run.name)}-{attempt}"
        workdir.mkdir(parents=True, exist_ok=True)
        claim(workdir)  # before the payload: a runner after a kill tells whose it is
        if self.options.prepare_call:
            args, kwargs = _resolve(self.options.prepare_call)(fn, args, kwargs)
        payload.write_bytes(workdir / PAYLOAD_FILE, payload.dump_call(fn, args, kwargs))
        succeeded = False
        try:
            value = self._run_job(task_run.id, task_run.name, batch, workdir, logger)
            succeeded = True
            return value
        finally:
            self._cancelled.discard(task_run.id)
            (workdir / PAYLOAD_FILE).unlink(missing_ok=True)
            if succeeded and not self.options.keep_job_files:
                shutil.rmtree(workdir, ignore_errors=True)

    def _run_job(
        self,
        task_run_id: uuid.UUID,
        task_run_name: str,
        batch: str,
        workdir: Path,
        logger: logging.Logger | logging.LoggerAdapter,
    ) -> Any:
        scheduler = self._scheduler
        if scheduler is None or self._closing:
            raise JobRemovedError("the task runner is shut down; no job was submitted")
        if task_run_id in self._cancelled:
            raise JobRemovedError("the task run was cancelled; no job was submitted")
        memory = self.options.request_memory_mb
        environment = self.job_environment()
        submission = 0
        while True:
            submission += 1
            spec = JobSpec(
                executable=self.options.python,
                arguments=["-m", JOB_MODULE, PAYLOAD_FILE, RESULT_FILE],
                log=workdir / f"job-{submission}.log",
                output=workdir / f"job-{submission}.out",
                error=workdir / f"job-{submission}.err",
                batch_name=batch,
                directory=workdir,
                input_files=(PAYLOAD_FILE,),
                output_files=(RESULT_FILE,),
                request_cpus=self.options.request_cpus,
                request_memory_mb=memory,
                request_disk_mb=self.options.request_disk_mb,
                environment=environment,
                container_image=self.options.container_image,
                description=task_run_name,
                extra=self.options.extra_submit,
            )
            spec.log.parent.mkdir(parents=True, exist_ok=True)
            spec.log.touch()
            job = scheduler.submit(spec)
            with self._lock:
                self._active[task_run_id] = _Active(job, scheduler)
                cancelled = task_run_id in self._cancelled
            if self._closing or cancelled:  # cancelled between submit and registration
                self._remove_job(task_run_id, "flow run or task run cancelled")
            logger.info(
                "%s job %s submitted (batch %s, %d cpu, %d MB memory, log %s)",
                self.options.backend,
                job,
                batch,
                spec.request_cpus,
                memory,
                spec.log,
            )
            try:
                outcome, detail = self._follow(job, spec, scheduler, logger)
            except BaseException:
                # Timeout or cancellation of the task run: the job must not outlive it.
                self._remove_job(task_run_id, "task run interrupted")
                raise
            finally:
                with self._lock:
                    self._active.pop(task_run_id, None)
            if outcome == "memory":
                cap = self.options.max_memory_mb
                if memory >= cap:
                    raise JobHeldError(f"job {job} held for memory at the {cap} MB cap: {detail}")
                memory = min(2 * memory, cap)
                logger.warning("job %s held: %s; resubmitting with %d MB", job, detail, memory)
                continue
            return self._outcome(job, outcome, detail, spec)

    def _outcome(self, job: JobId, outcome: str, detail: Any, spec: JobSpec) -> Any:
        if outcome == "held":
            raise JobHeldError(
                f"job {job} was held and removed after {self.options.max_releases} "
                f"release(s); hold reason: {detail}"
            )
        if outcome == "aborted":
            raise JobRemovedError(f"job {job} was removed: {detail}")
        if outcome == "vanished":
            raise JobVanishedError(
                f"job {job} vanished: the {self.options.backend} scheduler no longer knows it and "
                f"its log {spec.log} has no termination event (last event: {detail})"
            )
        if detail != 0:
            raise JobFailedError(
                f"job {job} exited with status {detail} without running the task function; "
                f"see {spec.error}"
            )
        result = spec.submit_dir / RESULT_FILE
        if not result.exists():
            raise JobFailedError(f"job {job} exited 0 but no {RESULT_FILE} came back to {result}")
        body = payload.load_outcome(result.read_bytes())
        result.unlink()
        if body["ok"]:
            return body["value"]
        error = RemoteJobError(str(job), body["type"], body["message"], body["traceback"])
        original = None
        if body["exception"] is not None:
            try:
                original = pickle.loads(body["exception"])
            except Exception:
                original = None
        raise error from original

    def _follow(
        self,
        job: JobId,
        spec: JobSpec,
        scheduler: Scheduler,
        logger: logging.Logger | logging.LoggerAdapter,
    ) -> tuple[str, Any]:
        """Follow the job's user log until it ends; stream its output to the task log.

        Returns ("terminated", exit code) | ("memory", reason) | ("held", reason) |
        ("aborted", reason) | ("vanished", last event name).
        """
        events = htcondor2.JobEventLog(str(spec.log))
        tails = {"stdout": _Tail(spec.output), "stderr": _Tail(spec.error)}
        state = {"releases": 0, "last": "none"}
        pause = 0.01
        next_queue_check = time.monotonic() + self.options.queue_check_seconds

        def pump(final: bool = False) -> None:
            for stream, tail in tails.items():
                for line in tail.lines(final):
                    logger.info("[%s %s] %s", stream, job, line)

        def handle(event: htcondor2.JobEvent) -> tuple[str, Any] | None:
            kind = event.type
            state["last"] = kind.name
            if kind == htcondor2.JobEventType.EXECUTE:
                logger.info("job %s executing on %s", job, event.get("ExecuteHost", "?"))
            elif kind == htcondor2.JobEventType.JOB_TERMINATED:
                if not event.get("TerminatedNormally", True):
                    return "terminated", f"killed by signal {event.get('TerminatedBySignal', '?')}"
                return "terminated", int(event.get("ReturnValue", -1))
            elif kind == htcondor2.JobEventType.JOB_HELD:
                reason = str(event.get("HoldReason", "no reason given"))
                if _is_memory_hold(int(event.get("HoldReasonCode", 0)), reason):
                    scheduler.remove(job, "held for memory; resubmitting with more")
                    return "memory", reason
                if state["releases"] >= self.options.max_releases:
                    scheduler.remove(job, f"held: {reason}")
                    return "held", reason
                state["releases"] += 1
                logger.warning("job %s held (%s); releasing (%d)", job, reason, state["releases"])
                scheduler.release(job)
            elif kind == htcondor2.JobEventType.JOB_RELEASED:
                logger.info("job %s released", job)
            elif kind == htcondor2.JobEventType.JOB_ABORTED:
                return "aborted", str(event.get("Reason", "removed"))
            return None

        def read() -> tuple[bool, tuple[str, Any] | None]:
            progressed = False
            for event in events.events(stop_after=0):
                if (event.cluster, event.proc) != (job.cluster, job.proc):
                    continue
                progressed = True
                outcome = handle(event)
                if outcome is not None:
                    return True, outcome
            return progressed, None

        try:
            while True:
                progressed, outcome = read()
                if outcome is None and time.monotonic() >= next_queue_check:
                    next_queue_check = time.monotonic() + self.options.queue_check_seconds
                    if not scheduler.is_queued(job):
                        # The scheduler may have written its last event just before
                        # forgetting the job: read the log once more before judging.
                        outcome = read()[1] or ("vanished", state["last"])
                if outcome is not None:
                    pump(final=True)
                    return outcome
                pump()
                pause = 0.01 if progressed else min(self.options.poll_seconds, pause * 1.5)
                scheduler.wait(job, pause)
        finally:
            events.close()

    def _remove_job(self, task_run_id: uuid.UUID, reason: str, pending: bool = False) -> bool:
        """Remove the task run's job; with ``pending``, a job not registered yet is
        removed as soon as it is (a warm worker may start it before the runner knows)."""
        with self._lock:
            active = self._active.get(task_run_id)
            if active is None and pending:
                self._cancelled.add(task_run_id)
                return True
        if active is None:
            return False
        try:
            active.scheduler.remove(active.job, reason)
        except Exception as exc:
            self.logger.warning("could not remove job %s: %s", active.job, exc)
            return False
        return True
