"""``RunnerOptions``: everything that shapes the runner's jobs, as one frozen value.

A frozen value is what Prefect needs from a task runner's configuration: the runner is
duplicated, compared and pickled by it, and a copy with one field changed is
``dataclasses.replace(options, field=value)``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal


@dataclass(frozen=True)
class RunnerOptions:
    """How jobs are run.

    Args:
        backend: ``"htcondor"`` (a pool through ``htcondor2``) or ``"local"`` (local
            processes writing the same user log, with the same environment).
        max_workers: ``local``: processes at once (default: CPU count). ``htcondor``:
            jobs in flight at once (default 200); the pool decides where they run.
        job_dir: directory on the flow host for each job's submit side: payload, result,
            user log, stdout/stderr. Payload and result travel in the job's sandbox
            (HTCondor file transfer), so no filesystem or store is shared with the job.
        request_cpus, request_memory_mb, request_disk_mb: the job's requests.
        max_memory_mb: cap for memory-hold resubmissions (memory doubles each time).
        max_releases: how often a (non-memory) held job is released before removal.
        environment: variables for the job. With ``pass_env``, the names copied from the
            flow's environment; nothing else from it reaches a job, local or pool.
        prepare_call: ``"module:function"`` run on the flow host for every call before
            it travels, ``(fn, args, kwargs) -> (args, kwargs)``: e.g. to hand the job
            presigned URLs instead of the store's keys. Called at each submission, so
            what it makes is fresh for each attempt and never a task parameter.
        python: interpreter on the execute node (default: the flow's).
        container_image: HTCondor ``container_image`` for pool jobs.
        extra_submit: more submit commands (``requirements``, ``accounting_group``…).
        schedd_name, collector: where the schedd is (default: the local configuration).
            An unreachable one is an error naming it, never a fallback.
        spool: submit with ``spool`` (input sandbox uploaded to the schedd, output
            retrieved from it, job state followed by schedd queries): a schedd on another
            host. Default: on when ``schedd_name`` or ``collector`` is given.
        token_file: an IDTOKEN for the schedd and collector (IDTOKENS authentication).
        condor_config: more HTCondor configuration for the flow host's bindings
            (``SEC_*``, ``TCP_CONNECT_TIMEOUT``…), set through ``htcondor2.param``.
        warm_workers: ``local``: run jobs of this package's entry point in long-lived
            worker processes that keep their imports between jobs (each job still in
            its own empty directory with the same environment).
        scratch_dir: ``local``: where job sandboxes are made (default: the system's).
        poll_seconds: longest pause between reads of a job's log.
        queue_check_seconds: how often to ask the scheduler whether a silent job still
            exists (vanished-job detection; default 0.5 local, 60 htcondor).
        keep_job_files: keep logs/stdout/stderr of successful jobs too.
        payload_max_age_seconds: a live job's payload is removed when its task ends,
            however it ends; one left by a killed flow process is removed by the next
            runner that starts on its host (the directory names its owner process), and
            one of unknown owner (another host's) once it is older than this. Longer
            than any task attempt may take.
    """

    backend: Literal["local", "htcondor"] = "local"
    max_workers: int | None = None
    job_dir: Path = Path("htcondor-jobs")
    request_cpus: int = 1
    request_memory_mb: int = 2048
    request_disk_mb: int = 4096
    max_memory_mb: int = 32768
    max_releases: int = 1
    environment: dict[str, str] = field(default_factory=dict)
    pass_env: tuple[str, ...] = ()
    prepare_call: str | None = None
    python: str = sys.executable
    container_image: str | None = None
    extra_submit: dict[str, str] = field(default_factory=dict)
    schedd_name: str | None = None
    collector: str | None = None
    spool: bool | None = None
    token_file: Path | None = None
    condor_config: dict[str, str] = field(default_factory=dict)
    warm_workers: bool = True
    scratch_dir: Path | None = None
    poll_seconds: float | None = None
    queue_check_seconds: float | None = None
    keep_job_files: bool = False
    payload_max_age_seconds: float = 24 * 3600

    def __post_init__(self) -> None:
        if self.backend not in ("local", "htcondor"):
            raise ValueError(f"backend must be 'local' or 'htcondor', not {self.backend!r}")
        # Normalised once, so equal configurations compare equal.
        set_ = object.__setattr__
        set_(self, "job_dir", Path(self.job_dir).absolute())
        set_(self, "environment", dict(self.environment))
        set_(self, "pass_env", tuple(self.pass_env))
        set_(self, "extra_submit", dict(self.extra_submit))
        set_(self, "condor_config", dict(self.condor_config))
        if self.spool is None:
            set_(self, "spool", bool(self.schedd_name or self.collector))
        local = self.backend == "local"
        if self.max_workers is None:
            set_(self, "max_workers", (os.cpu_count() or 1) if local else 200)
        if self.poll_seconds is None:
            set_(self, "poll_seconds", 0.2 if local else 2.0)
        if self.queue_check_seconds is None:
            set_(self, "queue_check_seconds", 0.5 if local else 60.0)
