"""process-run: one raw file from arrival to quality flag (docs/architecture.md §2).

    check-abandoned ── ingest ─┬─ archive-to-tape (copy, read back, compare adler32)
                               ├─ mirror-run
                               └─ pedestal-for ── find-reco ── reconstruct-chunk × N
                                  ── merge-reco ── register-reco ── quality

Ingest is the one pass every later step needs (adler32, picture count, validity);
after it the tape copy, the logbook row and the chunk jobs run at once, the chunks
never waiting for tape. The flow run completes only when the tape copy read back as
the raw file's adler32 AND the reconstruction and its quality are recorded: a tape
failure fails the run (and counts against it) whatever the reconstruction did.

Idempotent: every step first asks the catalog whether it is already done, so a
duplicate notification or a rerun changes nothing.
"""

from __future__ import annotations

from prefect import flow
from prefect.states import Cancelled
from prefect.task_runners import ThreadPoolTaskRunner

from cygno.flows.reconstruct_run import start_reconstruction
from cygno.tasks.bookkeeping import abandoned, record_failure_hook
from cygno.tasks.ingest import ingest
from cygno.tasks.mirror import mirror_run
from cygno.tasks.quality import quality
from cygno.tasks.reconstruct import chunk_task_runner, resolve_config
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
    with chunk_task_runner() as runner:
        reco = start_reconstruction(runner, raw, config).finish()  # None: a pedestal run
    # quality compares runs of the same kind, which the logbook row gives the run
    report = quality(reco, wait_for=[mirrored]) if reco is not None else None
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
