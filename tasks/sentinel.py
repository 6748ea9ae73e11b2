"""The safety net for missed bucket notifications and for runs that died: raw files the
catalog has not seen are announced again as ``cygno.raw.arrived``, exactly as the event
bridge does; raw files whose latest ``process-run`` crashed are started again. Every call
to the Prefect API is bounded by the settings and fails naming the API's URL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from prefect import task
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterName,
    FlowRunFilter,
    FlowRunFilterExpectedStartTime,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.client.schemas.sorting import FlowRunSort
from prefect.runtime import flow_run

from cygno.events import RAW_ARRIVED, raw_file_resource
from cygno.storage import keys
from cygno.tasks import resources
from cygno.tasks.bookkeeping import ABANDON_AFTER
from cygno.tasks.ingest import raw_location

PROCESS_RUN = "process-run/process-run"
#: How far back the sentinel looks for crashed process-runs.
CRASH_LOOKBACK = timedelta(days=2)
#: Flow runs read per request (the server answers at most its default limit, 200).
PAGE = 200


@task(
    name="find-unseen-raw",
    retries=2,
    retry_delay_seconds=10,
    timeout_seconds=600,
)
def unseen_raw_files() -> list[dict]:
    """Raw files in ``raw/`` with no catalog row and whose run is not abandoned, with
    their ETags."""
    store, catalog = resources.store(), resources.catalog()
    found = []
    for key, size in sorted(store.sizes(keys.RAW_PREFIX).items()):
        try:
            tag, run = keys.parse_raw_key(key)
        except ValueError:
            continue  # truth JSON and other neighbours of the raw files
        uri = store.uri(key)
        if catalog.raw_file(uri) is None and not catalog.is_abandoned(run, tag):
            etag = store.etag(key)  # what the bucket notification carries too
            found.append(
                {"uri": uri, "key": key, "tag": tag, "run": run, "size": size, "etag": etag}
            )
    return found


@task(name="announce-raw", retries=2, retry_delay_seconds=10)
def announce(files: list[dict]) -> int:
    """Post one ``cygno.raw.arrived`` per file, delivered before this returns. Each
    carries the object's ETag as a bucket notification does, so the trigger (one run per
    URI and ETag within its window) counts an upload that both announced as one."""
    events = [
        {
            "event": RAW_ARRIVED,
            "resource": raw_file_resource(
                f["uri"], f["tag"], f["run"], f["key"], f["size"], f["etag"]
            ),
            "payload": {"source": "sentinel", "key": f["key"], "etag": f["etag"]},
        }
        for f in files
    ]
    if events:
        resources.post_events(events)
    return len(events)


def process_runs_since(client, since: datetime, page: int = PAGE) -> list[FlowRun]:
    """Every ``process-run`` flow run expected to start after ``since``, page by page
    (one read returns at most the server's limit), oldest first: a run created while
    the pages are read lands after them, so no page boundary skips one."""
    found: list[FlowRun] = []
    while True:
        batch = client.read_flow_runs(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["process-run"])),
            flow_run_filter=FlowRunFilter(
                expected_start_time=FlowRunFilterExpectedStartTime(after_=since)
            ),
            sort=FlowRunSort.EXPECTED_START_TIME_ASC,
            limit=page,
            offset=len(found),
        )
        found += batch
        if len(batch) < page:
            return found


@task(name="find-crashed-runs", retries=2, retry_delay_seconds=10)
def crashed_raw_files(page: int = PAGE) -> list[str]:
    """Raw URIs whose latest ``process-run`` flow run (of the last two days) crashed:
    files that arrived but never finished, because a worker or its host died."""
    since = datetime.now(UTC) - CRASH_LOOKBACK
    with resources.prefect_client() as client:
        runs = process_runs_since(client, since, page)
    latest = {}
    for run in sorted(runs, key=lambda r: r.created or since):
        uri = (run.parameters or {}).get("raw_uri")
        if uri:
            latest[uri] = run
    return sorted(
        uri
        for uri, run in latest.items()
        if run.state is not None and run.state.type == StateType.CRASHED
    )


@task(name="restart-crashed", retries=2, retry_delay_seconds=10)
def restart(uris: list[str]) -> int:
    """Start ``process-run`` again for each crashed file (its steps are idempotent, so it
    finishes what the dead run left); a run that keeps crashing is abandoned like one
    that keeps failing. A retry of this task after a lost answer finds the run it
    already created (the idempotency key names this sentinel run and the file)."""
    catalog = resources.catalog()
    started = 0
    sentinel_run = flow_run.get_id() or uuid.uuid4().hex  # outside a flow: each call anew
    with resources.prefect_client() as client:
        deployment = client.read_deployment_by_name(PROCESS_RUN) if uris else None
        for uri in uris:
            _, tag, run = raw_location(uri)
            failure = catalog.record_failure(
                run, tag, "process-run", "its flow run crashed", abandon_after=ABANDON_AFTER
            )
            if failure.abandoned:
                continue
            client.create_flow_run_from_deployment(
                deployment.id,
                parameters={"raw_uri": uri},
                idempotency_key=f"sentinel-restart/{sentinel_run}/{uri}",
            )
            started += 1
    return started
