"""catalog-backup: nightly dump of the catalog and the mirrored logbook to the object
store (gzip JSON lines per table + manifest), keeping ``keep_daily`` daily and
``keep_weekly`` weekly dumps. ``cygno catalog restore`` rebuilds a database from one."""

from __future__ import annotations

from prefect import flow

from cygno.storage.catalog.backup import PREFIX
from cygno.tasks.backup import dump, retention


@flow(name="catalog-backup")
def catalog_backup(keep_daily: int = 7, keep_weekly: int = 4, prefix: str = PREFIX) -> dict:
    uri = dump(prefix)
    deleted = retention(keep_daily, keep_weekly, prefix)
    return {"dump": uri, "deleted": deleted}
