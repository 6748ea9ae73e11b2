"""A Prefect task runner that runs each task's function call as an HTCondor job.

Self-contained: it imports Prefect, ``htcondor2`` and its own modules, nothing of the
project that uses it. ``backend="local"`` runs the same job command, with the same
environment and the same user log, in local processes (development, tests, one node).

The names below load on first use: a job (``python -m <package>.job``) imports this
package too, and must not pay for Prefect.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "HTCondorTaskRunner": "runner",
    "JobFailedError": "runner",
    "JobHeldError": "runner",
    "JobRemovedError": "runner",
    "JobVanishedError": "runner",
    "RemoteJobError": "runner",
    "RunnerOptions": "options",
    "JobId": "scheduler",
    "JobSpec": "scheduler",
    "SchedulerError": "scheduler",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
