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
from typing import Any, Literal


@dataclass(frozen=True)
class RunnerOptions:
    """How jobs are run.

    Args:
        backend: ``"htcondor"`` (a pool through ``htcondor2``) or ``"local"`` (local
            processes writing the same user log, with the same environment).
        max_workers: ``local``: processes at once (default: CPU count). ``htcondor``:
            jobs in flight at once (default 200); the pool decides where they run.
        staging_url: fsspec URL for payloads and results (default: ``<job_dir>/staging``).
            Jobs on a pool must reach it (S3, or a shared filesystem).
        storage_options: fsspec options for ``staging_url``.
        job_dir: directory on the flow host for user logs and stdout/stderr.
        request_cpus, request_memory_mb, request_disk_mb: the job's requests.
        max_memory_mb: cap for memory-hold resubmissions (memory doubles each time).
        max_releases: how often a (non-memory) held job is released before removal.
        environment: variables for the job. With ``pass_env``, the names copied from the
            flow's environment; nothing else from it reaches a job, local or pool.
        forward_credentials: put the staging credentials in the job environment (off:
            jobs get only non-secret storage options, e.g. the endpoint).
        python: interpreter on the execute node (default: the flow's).
        container_image: HTCondor ``container_image`` for pool jobs.
        extra_submit: more submit commands (``requirements``, ``accounting_group``…).
        schedd_name, collector: where the schedd is (default: the local configuration).
        poll_seconds: longest pause between reads of a job's log.
        queue_check_seconds: how often to ask the scheduler whether a silent job still
            exists (vanished-job detection; default 0.5 local, 60 htcondor).
        keep_job_files: keep logs/stdout/stderr of successful jobs too.
    """

    backend: Literal["local", "htcondor"] = "local"
    max_workers: int | None = None
    staging_url: str | None = None
    storage_options: dict[str, Any] = field(default_factory=dict)
    job_dir: Path = Path("htcondor-jobs")
    request_cpus: int = 1
    request_memory_mb: int = 2048
    request_disk_mb: int = 4096
    max_memory_mb: int = 32768
    max_releases: int = 1
    environment: dict[str, str] = field(default_factory=dict)
    pass_env: tuple[str, ...] = ()
    forward_credentials: bool = False
    python: str = sys.executable
    container_image: str | None = None
    extra_submit: dict[str, str] = field(default_factory=dict)
    schedd_name: str | None = None
    collector: str | None = None
    poll_seconds: float | None = None
    queue_check_seconds: float | None = None
    keep_job_files: bool = False

    def __post_init__(self) -> None:
        if self.backend not in ("local", "htcondor"):
            raise ValueError(f"backend must be 'local' or 'htcondor', not {self.backend!r}")
        # Normalised once, so equal configurations compare equal.
        set_ = object.__setattr__
        set_(self, "job_dir", Path(self.job_dir).absolute())
        set_(self, "storage_options", dict(self.storage_options))
        set_(self, "environment", dict(self.environment))
        set_(self, "pass_env", tuple(self.pass_env))
        set_(self, "extra_submit", dict(self.extra_submit))
        local = self.backend == "local"
        if self.max_workers is None:
            set_(self, "max_workers", (os.cpu_count() or 1) if local else 200)
        if self.staging_url is None:
            set_(self, "staging_url", (self.job_dir / "staging").as_uri())
        if self.poll_seconds is None:
            set_(self, "poll_seconds", 0.2 if local else 2.0)
        if self.queue_check_seconds is None:
            set_(self, "queue_check_seconds", 0.5 if local else 60.0)
