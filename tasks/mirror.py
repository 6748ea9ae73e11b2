"""DAQ logbook → catalog: one run's row (in process-run) or everything that changed."""

from __future__ import annotations

from datetime import timedelta

from prefect import task
from prefect.tasks import exponential_backoff

from cygno.tasks import resources

#: Re-read changes this far behind the high-water mark: clocks and second-resolution
#: timestamps can put a later change at the same instant; upserts make the overlap free.
OVERLAP = timedelta(minutes=5)


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
    timeout_seconds=900,
)
def mirror_logbook() -> int:
    """Incremental mirror from the catalog's high-water mark (new runs and rows modified
    since); upserts make the overlap free. Returns how many rows changed."""
    catalog, logbook = resources.catalog(), resources.logbook()
    last_run, last_modified = catalog.logbook_high_water()
    if last_run is None:
        return catalog.upsert_logbook(logbook.runs_after(None))
    since = last_modified - OVERLAP if last_modified is not None else None
    return catalog.upsert_logbook([*logbook.runs_after(last_run), *logbook.changed_since(since)])
