"""What a scheduler backend is given (``JobSpec``) and what it must do (``Scheduler``).

Both backends take the same job description and report progress only through the
job's HTCondor user log, so the runner has one code path for following jobs. Neither
assumes a filesystem shared with the job: the job starts in an empty directory holding
only its ``input_files``, and only its ``output_files`` come back to ``directory``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class JobId:
    cluster: int
    proc: int = 0

    def __str__(self) -> str:
        return f"{self.cluster}.{self.proc}"


@dataclass
class JobSpec:
    """One job: the command, its sandbox and the resources it asks for.

    ``input_files`` and ``output_files`` are names relative to ``directory`` (the
    submit-side directory, default: the log's), HTCondor's ``transfer_input_files`` and
    ``transfer_output_files``.
    """

    executable: str
    arguments: list[str]
    log: Path
    output: Path
    error: Path
    batch_name: str
    directory: Path | None = None
    input_files: tuple[str, ...] = ()
    output_files: tuple[str, ...] = ()
    request_cpus: int = 1
    request_memory_mb: int = 2048
    request_disk_mb: int = 4096
    environment: dict[str, str] = field(default_factory=dict)
    container_image: str | None = None
    description: str = ""  # human name, e.g. the task run name
    extra: dict[str, str] = field(default_factory=dict)  # further submit commands

    @property
    def submit_dir(self) -> Path:
        return self.directory if self.directory is not None else self.log.parent


class SchedulerError(RuntimeError):
    """The scheduler could not be reached or refused a request."""


class Scheduler(Protocol):
    def submit(self, spec: JobSpec) -> JobId: ...

    def hold(self, job: JobId, reason: str) -> None: ...

    def release(self, job: JobId) -> None: ...

    def remove(self, job: JobId, reason: str) -> None: ...

    def is_queued(self, job: JobId) -> bool:
        """Whether the scheduler still knows the job (idle, running or held)."""
        ...

    def wait(self, job: JobId, timeout: float) -> None:
        """Pause until the job's log may have changed (at most ``timeout``)."""
        ...

    def close(self) -> None: ...
