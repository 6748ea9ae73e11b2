"""DAQ logbook → catalog: one run's row (in process-run), or the logbook's changes.

The DAQ's ``Runlog`` has no change-time column, so "what changed" is found by content:
each pass re-reads the rows that can still change — runs the mirror saw open (no
``stop_time``) and the most recent :data:`RECENT_RUNS` runs, which the uploader and the
online reconstruction update after the run closes — and writes only rows whose content
hash differs. A nightly full pass (``full=True``) re-reads everything, for the rare late
change to an old run (a tape status set days later, an operator's correction).
"""

from __future__ import annotations

from prefect import task
from prefect.tasks import exponential_backoff

from cygno.tasks import resources

#: Runs re-read on every pass behind the newest one mirrored (about a day of LIME runs).
RECENT_RUNS = 100
#: Rows per batch of a full pass.
FULL_PASS_BATCH = 1000


@task(
    name="mirror-run",
    retries=3,
    retry_delay_seconds=exponential_backoff(backoff_factor=5),
    timeout_seconds=300,
)
def mirror_run(run: int, tag: str) -> bool:
    """Copy this run's logbook row into the catalog, and its kind and times onto the run
    (quality compares runs of the same kind); False when the logbook has no row yet."""
    row = resources.logbook().get(run)
    if row is None:
        return False
    catalog = resources.catalog()
    catalog.upsert_logbook([row])
    catalog.upsert_run(
        run,
        tag,
        run_type=row.get("run_type"),
        start_time=row.get("start_time"),
        stop_time=row.get("stop_time"),
        events=row.get("number_of_events"),
    )
    return True


@task(
    name="mirror-logbook",
    retries=3,
    retry_delay_seconds=exponential_backoff(backoff_factor=5),
    timeout_seconds=3600,
)
def mirror_logbook(full: bool = False, recent_runs: int = RECENT_RUNS) -> int:
    """Mirror new and changed logbook rows: open runs and the ``recent_runs`` newest, or
    every row when ``full``; returns how many rows were inserted or changed.
    Idempotent: a pass with no change writes nothing."""
    catalog, logbook = resources.catalog(), resources.logbook()
    if full:
        return sum(catalog.upsert_logbook(batch) for batch in logbook.batches(FULL_PASS_BATCH))
    last, open_runs = catalog.logbook_progress()
    after = None if last is None else last - recent_runs
    return catalog.upsert_logbook(logbook.rows(after=after, runs=open_runs))
