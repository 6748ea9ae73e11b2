"""The ``htcondor`` scheduler: jobs submitted to a pool through the ``htcondor2`` bindings.

The submit description is built from a :class:`JobSpec` with the real
``htcondor2.Submit``; the schedd is located lazily (first submit), so building a flow
with this backend needs no pool. Job environment holds only what the runner put in
``JobSpec.environment`` (``getenv`` stays false): secrets never reach the submit file
unless the runner was told to forward them.
"""

from __future__ import annotations

import logging
import threading
import time

import htcondor2

from .scheduler import JobId, JobSpec, SchedulerError

logger = logging.getLogger(__name__)


def _quote_environment(env: dict[str, str]) -> str:
    """HTCondor's "new" environment syntax: "A=1 B='two words'"."""
    parts = []
    for key, value in sorted(env.items()):
        value = str(value).replace('"', '""').replace("'", "''")
        parts.append(f"{key}='{value}'" if any(c in value for c in " '\t") else f"{key}={value}")
    return '"' + " ".join(parts) + '"'


def _quote_arguments(args: list[str]) -> str:
    """HTCondor's "new" arguments syntax (double-quoted, spaces split)."""
    quoted = []
    for arg in args:
        arg = arg.replace('"', '""').replace("'", "''")
        quoted.append(f"'{arg}'" if any(c in arg for c in " \t") else arg)
    return '"' + " ".join(quoted) + '"'


def _classad_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def submit_description(spec: JobSpec) -> htcondor2.Submit:
    """The submit description of one job, as HTCondor will read it."""
    description: dict[str, str] = {
        "universe": "vanilla",
        "executable": spec.executable,
        "transfer_executable": "false",
        "arguments": _quote_arguments(spec.arguments),
        "request_cpus": str(spec.request_cpus),
        "request_memory": f"{spec.request_memory_mb}MB",
        "request_disk": f"{spec.request_disk_mb}MB",
        "environment": _quote_environment(spec.environment),
        "getenv": "false",
        "batch_name": spec.batch_name,
        "+JobBatchName": _classad_string(spec.batch_name),
        "output": str(spec.output),
        "error": str(spec.error),
        "log": str(spec.log),
        "should_transfer_files": "YES",
        "when_to_transfer_output": "ON_EXIT_OR_EVICT",
        "stream_output": "true",
        "stream_error": "true",
    }
    if spec.description:
        description["+PrefectTaskRun"] = _classad_string(spec.description)
    if spec.container_image:
        description["container_image"] = spec.container_image
    description.update(spec.extra)
    return htcondor2.Submit(description)


class HTCondorScheduler:
    """Submits, releases, removes and queries jobs on an HTCondor schedd."""

    def __init__(self, schedd_name: str | None = None, collector: str | None = None):
        self.schedd_name = schedd_name
        self.collector = collector
        self._schedd: htcondor2.Schedd | None = None
        self._lock = threading.Lock()

    def _connect(self) -> htcondor2.Schedd:
        with self._lock:
            if self._schedd is not None:
                return self._schedd
            try:
                if self.schedd_name or self.collector:
                    ad = htcondor2.Collector(self.collector).locate(
                        htcondor2.DaemonType.Schedd, self.schedd_name
                    )
                    self._schedd = htcondor2.Schedd(ad)
                else:
                    self._schedd = htcondor2.Schedd()
            except Exception as exc:
                where = self.schedd_name or "the local schedd"
                raise SchedulerError(
                    f"cannot reach HTCondor ({where}): {exc}. Point the runner at a pool "
                    "with schedd_name=/collector= (or CONDOR_CONFIG, _CONDOR_SCHEDD_HOST, "
                    "_CONDOR_COLLECTOR_HOST and a token in _CONDOR_SEC_TOKEN_DIRECTORY), "
                    "or use backend='local'"
                ) from exc
            return self._schedd

    def submit(self, spec: JobSpec) -> JobId:
        for path in (spec.log, spec.output, spec.error):
            path.parent.mkdir(parents=True, exist_ok=True)
        schedd = self._connect()
        try:
            result = schedd.submit(submit_description(spec), count=1)
        except Exception as exc:
            raise SchedulerError(f"HTCondor refused the job {spec.description!r}: {exc}") from exc
        return JobId(result.cluster(), result.first_proc())

    def _act(self, action: htcondor2.JobAction, job: JobId, reason: str | None = None) -> None:
        try:
            self._connect().act(action, [str(job)], reason)
        except Exception as exc:
            raise SchedulerError(f"HTCondor could not {action.name} job {job}: {exc}") from exc

    def hold(self, job: JobId, reason: str) -> None:
        self._act(htcondor2.JobAction.Hold, job, reason)

    def release(self, job: JobId) -> None:
        self._act(htcondor2.JobAction.Release, job, "released by HTCondorTaskRunner")

    def remove(self, job: JobId, reason: str) -> None:
        self._act(htcondor2.JobAction.Remove, job, reason)

    def is_queued(self, job: JobId) -> bool:
        try:
            ads = self._connect().query(
                f"ClusterId == {job.cluster} && ProcId == {job.proc}", ["JobStatus"]
            )
        except Exception as exc:
            # A schedd that does not answer now says nothing about the job: ask later.
            logger.warning("cannot query job %s on the schedd: %s", job, exc)
            return True
        return bool(ads)

    def wait(self, job: JobId, timeout: float) -> None:
        time.sleep(timeout)

    def close(self) -> None:
        self._schedd = None
