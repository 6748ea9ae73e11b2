"""process-run: one raw file from arrival to quality flag (docs/architecture.md §2).

    ingest ─┬─ archive-to-tape
            ├─ mirror-run
            └─ reconstruct-run ── quality

Idempotent: every step first asks the catalog whether it is already done, so a
duplicate notification or a rerun changes nothing.
"""

from __future__ import annotations

from prefect import flow
from prefect.states import Cancelled
from prefect.task_runners import ThreadPoolTaskRunner

from cygno.flows.reconstruct_run import reconstruct_run
from cygno.tasks.bookkeeping import abandoned, record_failure_hook
from cygno.tasks.ingest import ingest
from cygno.tasks.mirror import mirror_run
from cygno.tasks.quality import quality
from cygno.tasks.reconstruct import resolve_config
from cygno.tasks.tape import archive_to_tape


@flow(
    name="process-run",
    flow_run_name="process-{raw_uri}",
    task_runner=ThreadPoolTaskRunner(max_workers=4),
    on_failure=[record_failure_hook("process-run")],
)
def process_run(raw_uri: str, reco_version: str | None = None) -> dict:
    """Ingest, archive, mirror, reconstruct and check one raw file."""
    config = resolve_config(expected_version=reco_version)
    if (reason := abandoned(raw_uri)) is not None:
        return Cancelled(message=reason)
    raw = ingest(raw_uri)
    archived = archive_to_tape.submit(raw)
    mirrored = mirror_run.submit(raw.run, raw.tag)
    reco = reconstruct_run(raw, config)  # None for a pedestal run
    report = quality(reco) if reco is not None else None
    return {
        "run": raw.run,
        "tag": raw.tag,
        "raw": raw.uri,
        "tape": archived.result(),
        "logbook_row": mirrored.result(),
        "reco": reco and reco.uri,
        "reco_version": reco and reco.reco_version,
        "chunk_seconds": list(reco.chunk_seconds) if reco else [],
        "quality_flag": report and report.flag,
    }
