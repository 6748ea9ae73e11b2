"""db-mirror: every few minutes, the DAQ logbook's new and changed rows → catalog."""

from __future__ import annotations

from prefect import flow

from cygno.tasks.mirror import mirror_logbook


@flow(name="db-mirror")
def db_mirror() -> int:
    return mirror_logbook()
