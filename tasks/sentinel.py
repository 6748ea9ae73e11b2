"""The safety net for missed bucket notifications: raw files the catalog has not seen
are announced again as ``cygno.raw.arrived``, exactly as the event bridge does."""

from __future__ import annotations

from prefect import task
from prefect.events import emit_event

from cygno.events import RAW_ARRIVED, raw_file_resource
from cygno.storage import keys
from cygno.tasks import resources


@task(
    name="find-unseen-raw",
    retries=2,
    retry_delay_seconds=10,
    timeout_seconds=600,
)
def unseen_raw_files() -> list[dict]:
    """Raw files in ``raw/`` with no catalog row and whose run is not abandoned."""
    store, catalog = resources.store(), resources.catalog()
    found = []
    for key, size in sorted(store.sizes(keys.RAW_PREFIX).items()):
        try:
            tag, run = keys.parse_raw_key(key)
        except ValueError:
            continue  # truth JSON and other neighbours of the raw files
        uri = store.uri(key)
        if catalog.raw_file(uri) is None and not catalog.is_abandoned(run, tag):
            found.append({"uri": uri, "key": key, "tag": tag, "run": run, "size": size})
    return found


@task(name="announce-raw", retries=2, retry_delay_seconds=10)
def announce(files: list[dict]) -> int:
    """Emit one ``cygno.raw.arrived`` per file (the trigger's window drops duplicates)."""
    for f in files:
        emit_event(
            event=RAW_ARRIVED,
            resource=raw_file_resource(f["uri"], f["tag"], f["run"], f["key"], f["size"]),
            payload={"source": "sentinel", "key": f["key"]},
        )
    return len(files)
