"""The ``htcondor`` scheduler: jobs submitted to a pool through the ``htcondor2`` bindings.

No filesystem is assumed shared with the execute nodes: the payload goes in the job's
input sandbox and the result comes back in its output sandbox (HTCondor file transfer).
With ``spool`` (a schedd on another host, INFN Cloud's case) the input sandbox is
uploaded to the schedd, the output retrieved from it when the job completes, and the
job's state is followed by schedd queries and written to the local user log in
HTCondor's own format, so the runner follows a remote job as it follows any other.

The submit description is built from a :class:`JobSpec` with the real
``htcondor2.Submit``; the schedd is located lazily (first submit), so building a flow
with this backend needs no pool. A schedd or collector that cannot be reached is an
error naming it: nothing falls back to another schedd. Job environment holds only
what the runner put in ``JobSpec.environment`` (``getenv`` stays false).
"""

from __future__ import annotations

import functools
import logging
import os
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import htcondor2

from .eventlog import EventLogWriter
from .scheduler import JobId, JobSpec, SchedulerError

logger = logging.getLogger(__name__)

#: The job attributes the spool mode follows.
STATE_ATTRIBUTES = [
    "ClusterId",
    "ProcId",
    "JobStatus",
    "HoldReason",
    "HoldReasonCode",
    "ExitCode",
    "ExitBySignal",
    "ExitSignal",
    "RemoteHost",
    "RemoveReason",
]
HOLD_CODE_SPOOLING_INPUT = 16  # held at submission until the input sandbox is spooled
# What condor_submit -spool sets: the completed job waits for its output to be fetched.
LEAVE_IN_QUEUE = (
    "JobStatus == 4 && (CompletionDate =?= UNDEFINED || CompletionDate == 0 || "
    "((time() - CompletionDate) < 864000))"
)


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


def _relative(path: Path, directory: Path) -> str:
    """A sandbox file's name as HTCondor resolves it: relative to ``initialdir``."""
    try:
        return str(path.relative_to(directory))
    except ValueError:
        return str(path)


def submit_description(spec: JobSpec, spool: bool = False) -> htcondor2.Submit:
    """The submit description of one job, as HTCondor will read it."""
    directory = spec.submit_dir
    description: dict[str, str] = {
        "universe": "vanilla",
        "executable": spec.executable,
        "transfer_executable": "false",
        "arguments": _quote_arguments(spec.arguments),
        "initialdir": str(directory),
        "request_cpus": str(spec.request_cpus),
        "request_memory": f"{spec.request_memory_mb}MB",
        "request_disk": f"{spec.request_disk_mb}MB",
        "environment": _quote_environment(spec.environment),
        "getenv": "false",
        "batch_name": spec.batch_name,
        "+JobBatchName": _classad_string(spec.batch_name),
        "output": _relative(spec.output, directory),
        "error": _relative(spec.error, directory),
        "should_transfer_files": "YES",
        "when_to_transfer_output": "ON_EXIT",
        "transfer_input_files": ",".join(spec.input_files),
        "transfer_output_files": ",".join(spec.output_files),
    }
    if spool:
        # The schedd keeps its own log in its spool; the scheduler follows the job by
        # queries and writes the local log. Output comes back once, on retrieval.
        description["leave_in_queue"] = LEAVE_IN_QUEUE
    else:
        description["log"] = str(spec.log)
        description["stream_output"] = "true"
        description["stream_error"] = "true"
    if spec.description:
        description["+PrefectTaskRun"] = _classad_string(spec.description)
    if spec.container_image:
        description["container_image"] = spec.container_image
    description.update(spec.extra)
    return htcondor2.Submit(description)


def configure_bindings(
    token_file: str | os.PathLike[str] | None, config: Mapping[str, str]
) -> None:
    """HTCondor configuration for this process's bindings (process-wide, as HTCondor's
    own tools read it): ``config`` entries, and an IDTOKEN as the client credential.

    The token is not copied: a private directory holds a link to it, because HTCondor
    reads tokens from a directory (``SEC_TOKEN_DIRECTORY``).
    """
    for name, value in config.items():
        htcondor2.param[name] = str(value)
    if token_file is None:
        return
    token = Path(token_file).expanduser().absolute()
    if not token.is_file():
        raise SchedulerError(f"the HTCondor token file {token} does not exist")
    htcondor2.param["SEC_TOKEN_DIRECTORY"] = str(_token_directory(token))
    if "SEC_CLIENT_AUTHENTICATION_METHODS" not in config:
        htcondor2.param["SEC_CLIENT_AUTHENTICATION_METHODS"] = "IDTOKENS"


@functools.lru_cache(maxsize=8)
def _token_directory(token: Path) -> Path:
    """A private directory holding only a link to ``token`` (once per process)."""
    directory = Path(tempfile.mkdtemp(prefix="htcondor-tokens-"))
    (directory / token.name).symlink_to(token)
    return directory


@dataclass
class _Followed:
    """A spooled job whose state the scheduler mirrors into its local user log."""

    spec: JobSpec
    log: EventLogWriter
    status: int = 1
    seen: bool = True  # present in the last answered query


def state_events(status: int, ad: Mapping[str, Any]) -> tuple[int, list[tuple[str, tuple]]]:
    """The user-log events that take a job from ``status`` to the state in ``ad`` (a job
    ad from a schedd query) as ``(EventLogWriter method name, arguments)``, and the
    status to compare the next query with."""
    new = int(ad.get("JobStatus", status))
    code = int(ad.get("HoldReasonCode", 0) or 0)
    if new == status or (new == 5 and code == HOLD_CODE_SPOOLING_INPUT):
        return status, []  # unchanged, or waiting for its own input upload: "submitted"
    events: list[tuple[str, tuple]] = []
    if status == 5 and new in (1, 2):
        events.append(("released", ("released on the schedd",)))
    if new == 2:
        events.append(("executing", (str(ad.get("RemoteHost", "")) or None,)))
    elif new == 5 and code != HOLD_CODE_SPOOLING_INPUT:
        events.append(("held", (str(ad.get("HoldReason", "held")), code)))
    elif new == 3:
        events.append(("aborted", (str(ad.get("RemoveReason", "removed on the schedd")),)))
    elif new == 4:
        if ad.get("ExitBySignal"):
            events.append(("killed", (int(ad.get("ExitSignal", 0)),)))
        else:
            events.append(("terminated", (int(ad.get("ExitCode", -1)),)))
    return new, events


class HTCondorScheduler:
    """Submits, releases, removes and queries jobs on an HTCondor schedd."""

    def __init__(
        self,
        schedd_name: str | None = None,
        collector: str | None = None,
        *,
        spool: bool = False,
        token_file: str | os.PathLike[str] | None = None,
        condor_config: Mapping[str, str] | None = None,
        poll_seconds: float = 5.0,
    ):
        self.schedd_name = schedd_name
        self.collector = collector
        self.spool = spool
        self.token_file = token_file
        self.condor_config = dict(condor_config or {})
        self.poll_seconds = poll_seconds
        self._schedd: htcondor2.Schedd | None = None
        self._lock = threading.Lock()
        self._followed: dict[JobId, _Followed] = {}
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    def where(self) -> str:
        collector = self.collector or htcondor2.param.get("COLLECTOR_HOST") or "none configured"
        if self.schedd_name:
            return f"schedd {self.schedd_name!r} through collector {collector!r}"
        if self.collector:
            return f"the first schedd of collector {collector!r}"
        return "the local schedd (CONDOR_CONFIG)"

    def _connect(self) -> htcondor2.Schedd:
        with self._lock:
            if self._schedd is not None:
                return self._schedd
            configure_bindings(self.token_file, self.condor_config)
            try:
                if self.schedd_name or self.collector:
                    ad = htcondor2.Collector(self.collector).locate(
                        htcondor2.DaemonType.Schedd, self.schedd_name
                    )
                    if self.schedd_name and ad.get("Name") != self.schedd_name:
                        raise SchedulerError(f"the collector answered with {ad.get('Name')!r}")
                    schedd = htcondor2.Schedd(ad)
                else:
                    schedd = htcondor2.Schedd()
            except Exception as exc:
                raise SchedulerError(
                    f"cannot reach HTCondor: {self.where()}: {exc}. Check schedd_name, "
                    "collector and the IDTOKEN (token_file), or use backend='local'"
                ) from exc
            self._schedd = schedd
            return schedd

    def submit(self, spec: JobSpec) -> JobId:
        for path in (spec.log, spec.output, spec.error):
            path.parent.mkdir(parents=True, exist_ok=True)
        schedd = self._connect()
        try:
            result = schedd.submit(submit_description(spec, self.spool), count=1, spool=self.spool)
            if self.spool:
                schedd.spool(result)
        except Exception as exc:
            raise SchedulerError(
                f"{self.where()} refused the job {spec.description!r}: {exc}"
            ) from exc
        job = JobId(result.cluster(), result.first_proc())
        if self.spool:
            log = EventLogWriter(spec.log, job.cluster, job.proc, on_write=self._notify)
            log.submitted()
            with self._lock:
                self._followed[job] = _Followed(spec, log)
                if self._poller is None:
                    self._poller = threading.Thread(
                        target=self._poll, name="htcondor-spool-poller", daemon=True
                    )
                    self._poller.start()
        return job

    def _act(self, action: htcondor2.JobAction, job: JobId, reason: str | None = None) -> None:
        try:
            self._connect().act(action, [str(job)], reason)
        except Exception as exc:
            raise SchedulerError(
                f"{self.where()} could not {action.name} job {job}: {exc}"
            ) from exc

    def hold(self, job: JobId, reason: str) -> None:
        self._act(htcondor2.JobAction.Hold, job, reason)

    def release(self, job: JobId) -> None:
        self._act(htcondor2.JobAction.Release, job, "released by HTCondorTaskRunner")

    def remove(self, job: JobId, reason: str) -> None:
        self._act(htcondor2.JobAction.Remove, job, reason)

    def is_queued(self, job: JobId) -> bool:
        if self.spool:
            followed = self._followed.get(job)
            return followed is not None and followed.seen
        try:
            ads = self._connect().query(
                f"ClusterId == {job.cluster} && ProcId == {job.proc}", ["JobStatus"]
            )
        except Exception as exc:
            # A schedd that does not answer now says nothing about the job: ask later.
            logger.warning("cannot query job %s on %s: %s", job, self.where(), exc)
            return True
        return bool(ads)

    def wait(self, job: JobId, timeout: float) -> None:
        if not self.spool:
            time.sleep(timeout)
            return
        with self._changed:
            self._changed.wait(timeout)

    def close(self) -> None:
        self._stop.set()
        self._schedd = None

    # --- spool mode: the job's state by queries, written to the local user log ---------

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            with self._lock:
                jobs = list(self._followed)
            if not jobs:
                continue
            constraint = " || ".join(
                f"(ClusterId == {j.cluster} && ProcId == {j.proc})" for j in jobs
            )
            try:
                ads = self._connect().query(constraint, STATE_ATTRIBUTES)
            except Exception as exc:
                logger.warning("cannot query jobs on %s: %s", self.where(), exc)
                continue
            found = {JobId(int(ad["ClusterId"]), int(ad["ProcId"])): ad for ad in ads}
            for job in jobs:
                followed = self._followed[job]
                followed.seen = job in found
                if followed.seen:
                    self._advance(job, followed, found[job])

    def _advance(self, job: JobId, followed: _Followed, ad: Mapping[str, Any]) -> None:
        previous = followed.status
        followed.status, events = state_events(previous, ad)
        if followed.status == 4:
            # Bring the output sandbox (result, stdout, stderr) home before saying so.
            try:
                schedd = self._connect()
                schedd.retrieve(str(job))
                schedd.edit([str(job)], "LeaveJobInQueue", "false")
            except Exception as exc:
                logger.warning("cannot retrieve the output of job %s: %s", job, exc)
                followed.status = previous  # try again at the next poll
                return
        for method, args in events:
            getattr(followed.log, method)(*args)
        if followed.status in (3, 4):
            with self._lock:
                self._followed.pop(job, None)
