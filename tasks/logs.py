"""One Prefect log line that says nothing about our tasks, dropped where it is made.

Prefect enforces a task's ``timeout_seconds`` in a worker thread by raising the timeout
in that thread from a watcher thread; it lands at the thread's next Python instruction,
so a call blocked in C (a socket read) delays it until the call returns. Prefect warns
about this for every task run in a thread, i.e. every task run of our flows (submitted
tasks, and chunk tasks, whose engines run in the chunk runner's threads): one WARNING
per task run, on every run. Our tasks' blocking calls have their own bounds (the store,
catalog and tape clients' timeouts; the runner follows a job by polling at most
``poll_seconds``), so the timeout takes effect within those bounds and the warning
holds nothing to act on. Every other record of the logger passes.
"""

from __future__ import annotations

import logging

#: The start of Prefect's message (prefect.task_engine, run_context).
THREAD_TIMEOUT_WARNING = "Timeout of %s seconds configured for this task, but the task is running"


class _DropThreadTimeoutWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str) and record.msg.startswith(THREAD_TIMEOUT_WARNING))


_FILTER = _DropThreadTimeoutWarning()


def quiet_thread_timeout_warning() -> None:
    """Drop the warning from the task run logger (idempotent; Prefect's later,
    incremental logging setups keep a logger's filters)."""
    logging.getLogger("prefect.task_runs").addFilter(_FILTER)
