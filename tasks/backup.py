"""Catalog backup: dump the catalog (the mirrored DAQ logbook included) into the object
store, then apply the retention policy."""

from __future__ import annotations

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.tasks import exponential_backoff

from cygno.storage.catalog.backup import PREFIX, apply_retention, dump_catalog
from cygno.tasks import resources


@task(
    name="dump-catalog",
    retries=2,
    retry_delay_seconds=exponential_backoff(backoff_factor=10),
    timeout_seconds=3600,
)
def dump(prefix: str = PREFIX) -> str:
    """One consistent dump; returns its URI (a failed attempt leaves no manifest, so it
    never counts as a backup and retention removes it once a later one completes)."""
    store, catalog = resources.store(), resources.catalog()
    info = dump_catalog(catalog.url, store, prefix)
    rows = "\n".join(f"| {name} | {n} |" for name, n in info.rows.items())
    create_markdown_artifact(
        key="catalog-backup",
        markdown=f"**{store.uri(info.key)}** (schema {info.revision})\n\n"
        f"| table | rows |\n|---|---|\n{rows}\n",
        description="Latest catalog backup",
    )
    return store.uri(info.key)


@task(name="backup-retention", retries=2, retry_delay_seconds=10)
def retention(keep_daily: int, keep_weekly: int, prefix: str = PREFIX) -> list[str]:
    """Delete the dumps the policy no longer keeps; returns their keys."""
    return apply_retention(resources.store(), keep_daily, keep_weekly, prefix)
