"""tape-reconcile: every raw file in S3 and in the catalog has a verified tape copy.

catalog snapshot ─ tape + raw/ listings ─ catalog snapshot   (Rucio auditor)
  → plan (dark / lost / missing, within the re-archive threshold)
  → catalog copies no longer on tape: "missing"
  → verify tape copies (ok only from bytes read back; mismatch: flagged, never
    overwritten) ∥ re-archive missing
  → table artifact
"""

from __future__ import annotations

from prefect import flow, unmapped
from prefect.states import Completed, Failed

from cygno.tasks.reconcile import (
    Finding,
    catalog_snapshot,
    mark_missing_copies,
    plan_reconcile,
    raw_listing,
    report_reconcile,
    tape_listing,
    verify_tape_copies,
)
from cygno.tasks.tape import archive_to_tape

NEEDS_A_HUMAN = ("mismatch", "lost-everywhere", "held-back", "rearchive-failed")


@flow(name="tape-reconcile")
def tape_reconcile(max_rearchive_fraction: float = 0.05, read_back: bool = True):
    before = catalog_snapshot()
    on_tape, on_disk = tape_listing(), raw_listing()
    after = catalog_snapshot()
    plan = plan_reconcile(before, on_tape, on_disk, after, max_rearchive_fraction)
    mark_missing_copies(plan.gone)
    archived = archive_to_tape.map(plan.to_archive, force=unmapped(True))
    findings = [*plan.findings, *verify_tape_copies(plan.to_verify, read_back, plan.flagged)]
    for raw, future in zip(plan.to_archive, archived, strict=True):
        future.wait()
        done = future.state.is_completed()
        status = "rearchived" if done else "rearchive-failed"
        findings.append(Finding(raw.key, status, future.state.message or ""))
    counts = report_reconcile(findings)
    attention = {s: n for s, n in counts.items() if s in NEEDS_A_HUMAN}
    if attention:
        return Failed(message=f"tape reconciliation needs a human: {attention}")
    return Completed(message=f"tape reconciliation: {counts}")
