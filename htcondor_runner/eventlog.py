"""Write HTCondor's user job event log ("user log") format.

The local scheduler backend writes the same log HTCondor's schedd and shadow write, so
the runner follows every job, local or on a pool, through ``htcondor2.JobEventLog``.
Each event is one ``write()`` on an ``O_APPEND`` file ending with the ``...`` line, so a
reader never sees an interleaved event (``JobEventLog`` ignores an unfinished one).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

# Event numbers of the user log (HTCondor manual, "Job event log codes").
SUBMIT = 0
EXECUTE = 1
JOB_ABORTED = 9
JOB_TERMINATED = 5
JOB_HELD = 12
JOB_RELEASED = 13

HOLD_CODE_USER = 1
HOLD_CODE_MEMORY = 34  # "job exceeded its memory request" (JobOutOfResources)

_USAGE_LINES = (
    "\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  Run Remote Usage\n"
    "\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  Run Local Usage\n"
    "\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  Total Remote Usage\n"
    "\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  Total Local Usage\n"
    "\t0  -  Run Bytes Sent By Job\n"
    "\t0  -  Run Bytes Received By Job\n"
    "\t0  -  Total Bytes Sent By Job\n"
    "\t0  -  Total Bytes Received By Job\n"
)


def _one_line(text: str) -> str:
    """Event bodies are line oriented: keep a reason on one line."""
    return " ".join(str(text).split())


class EventLogWriter:
    """Appends events for one job (cluster.proc) to a user log file."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        cluster: int,
        proc: int = 0,
        on_write: Callable[[], None] | None = None,
    ):
        self.path = Path(path)
        self._on_write = on_write
        self.cluster = cluster
        self.proc = proc
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._host = f"<127.0.0.1:0?addrs=127.0.0.1-0&alias={socket.gethostname()}>"

    def _write(self, code: int, headline: str, body: str = "") -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
        event = (
            f"{code:03d} ({self.cluster:03d}.{self.proc:03d}.000) {stamp} {headline}\n{body}...\n"
        )
        data = event.encode()
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
        if self._on_write is not None:
            self._on_write()

    def submitted(self) -> None:
        self._write(SUBMIT, f"Job submitted from host: {self._host}")

    def executing(self, host: str | None = None) -> None:
        self._write(EXECUTE, f"Job executing on host: {host or self._host}")

    def terminated(self, return_value: int) -> None:
        body = f"\t(1) Normal termination (return value {int(return_value)})\n" + _USAGE_LINES
        self._write(JOB_TERMINATED, "Job terminated.", body)

    def killed(self, signal_number: int) -> None:
        """Terminated by a signal (``TerminatedNormally`` false in ``JobEventLog``)."""
        body = f"\t(0) Abnormal termination (signal {int(signal_number)})\n\t(0) No core file\n"
        body += _USAGE_LINES
        self._write(JOB_TERMINATED, "Job terminated.", body)

    def held(self, reason: str, code: int = HOLD_CODE_USER, subcode: int = 0) -> None:
        body = f"\t{_one_line(reason)}\n\tCode {int(code)} Subcode {int(subcode)}\n"
        self._write(JOB_HELD, "Job was held.", body)

    def released(self, reason: str) -> None:
        self._write(JOB_RELEASED, "Job was released.", f"\t{_one_line(reason)}\n")

    def aborted(self, reason: str) -> None:
        self._write(JOB_ABORTED, "Job was aborted.", f"\t{_one_line(reason)}\n")
