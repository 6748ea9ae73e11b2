"""What the job directory says: one line per job left behind, read from its user log.

Successful jobs clean up after themselves, so what remains under ``job_dir`` is the
jobs that failed, were held, removed or vanished, or are running now.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import htcondor2


@dataclass(frozen=True)
class JobSummary:
    batch: str
    task: str
    job: str
    state: str  # submitted | executing | held | released | terminated | removed
    detail: str
    log: Path


def _describe(event: htcondor2.JobEvent) -> tuple[str, str]:
    kind = event.type
    if kind == htcondor2.JobEventType.JOB_TERMINATED:
        return "terminated", f"exit {event.get('ReturnValue', '?')}"
    if kind == htcondor2.JobEventType.JOB_HELD:
        return "held", f"{event.get('HoldReason', '')} (code {event.get('HoldReasonCode', '?')})"
    if kind == htcondor2.JobEventType.JOB_ABORTED:
        return "removed", str(event.get("Reason", ""))
    if kind == htcondor2.JobEventType.JOB_RELEASED:
        return "released", ""
    if kind == htcondor2.JobEventType.EXECUTE:
        return "executing", str(event.get("ExecuteHost", ""))
    return "submitted", ""


def job_summaries(job_dir: Path) -> list[JobSummary]:
    """Every user log under ``job_dir`` (``<batch>/<task>/job-N.log``), oldest first."""
    summaries = []
    for log in sorted(job_dir.glob("*/*/job-*.log"), key=lambda p: p.stat().st_mtime):
        events = htcondor2.JobEventLog(str(log))
        try:
            last = None
            for event in events.events(stop_after=0):
                last = event
        finally:
            events.close()
        if last is None:
            continue
        state, detail = _describe(last)
        summaries.append(
            JobSummary(
                batch=log.parent.parent.name,
                task=log.parent.name,
                job=f"{last.cluster}.{last.proc}",
                state=state,
                detail=detail,
                log=log,
            )
        )
    return summaries
