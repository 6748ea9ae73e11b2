"""db-mirror: every few minutes the DAQ logbook's open and recent runs → catalog; nightly
(``full=True``) every row."""

from __future__ import annotations

from prefect import flow

from cygno.tasks.mirror import RECENT_RUNS, mirror_logbook


@flow(name="db-mirror")
def db_mirror(full: bool = False, recent_runs: int = RECENT_RUNS) -> int:
    return mirror_logbook(full, recent_runs)
