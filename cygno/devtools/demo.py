"""``make demo``: the platform running by itself on one machine.

Import it only after :meth:`LocalStack.adopt_environment`: it imports Prefect, which
reads ``PREFECT_API_URL`` once, and a client without one would start an ephemeral API
server of its own on the stack's database.

The demo plays the DAQ and the object store's notifier: it simulates a pedestal run and
a few data runs, uploads each to ``raw/<tag>/`` and POSTs the bucket notification MinIO
would send to the event bridge. From there nothing is called by hand: the bridge emits
``cygno.raw.arrived``, the deployment trigger starts ``process-run`` on the worker, and
the demo only watches the flow runs until they finish.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

import httpx
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName
from prefect.client.schemas.objects import FlowRun

from cygno.devtools.local_stack import LocalStack, StackAddresses
from cygno.reco.simulate import SimulatedRun, simulate_one
from cygno.resources import prefect_client, store_for
from cygno.settings import Settings, get_settings
from cygno.storage.catalog import Catalog
from cygno.storage.daqdb import DaqLogbook
from cygno.storage.objectstore import ObjectStore

DATA_KINDS = ("fe55", "mixed", "fe55", "muon")


@dataclass(frozen=True)
class DemoRun:
    run: SimulatedRun
    uri: str
    arrived_at: datetime  # when the bridge was notified


def minio_notification(bucket: str, key: str, size: int, etag: str) -> dict:
    """The body MinIO POSTs to a webhook target for one uploaded object."""
    return {
        "EventName": "s3:ObjectCreated:Put",
        "Key": f"{bucket}/{key}",
        "Records": [
            {
                "eventVersion": "2.0",
                "eventSource": "minio:s3",
                "eventName": "s3:ObjectCreated:Put",
                "eventTime": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                    "object": {
                        "key": quote(key, safe=""),
                        "size": size,
                        "eTag": etag,
                        "contentType": "application/octet-stream",
                        "sequencer": f"{time.time_ns():X}",
                    },
                },
            }
        ],
    }


def announce(stack: LocalStack, store: ObjectStore, run: SimulatedRun) -> str:
    """POST the upload's notification to the bridge, as the object store would."""
    bucket = (
        store.url.removeprefix("s3://").split("/", 1)[0]
        if store.url.startswith("s3://")
        else "cygno-data"
    )
    body = minio_notification(bucket, run.key, run.checksums.size, store.etag(run.key))
    response = httpx.post(
        f"{stack.addresses.bridge_url}/s3-events",
        json=body,
        headers={"Authorization": f"Bearer {stack.bridge_token()}"},
        timeout=10.0,
    )
    response.raise_for_status()
    return store.uri(run.key)


def process_runs_of(uris: list[str] | None) -> dict[str, list[FlowRun]]:
    """The process-run flow runs started for each raw URI (every URI when None), oldest
    first."""
    with prefect_client(get_settings()) as client:
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["process-run"]))
        )
    found: dict[str, list[FlowRun]] = {uri: [] for uri in uris or []}
    for flow_run in sorted(runs, key=lambda r: r.created or 0):
        uri = (flow_run.parameters or {}).get("raw_uri")
        if (uris is None or uri in found) and flow_run.state is not None:
            found.setdefault(uri, []).append(flow_run)
    return found


def _done(run: FlowRun) -> bool:
    """Final, and not Crashed: the sentinel starts a crashed run's file again."""
    return run.state is not None and run.state.is_final() and not run.state.is_crashed()


def interrupted() -> list[str]:
    """Raw files whose latest process-run has not finished: a run a stopped demo left
    behind (ended Crashed when the stack came up again, then restarted by the sentinel)."""
    return sorted(uri for uri, runs in process_runs_of(None).items() if not _done(runs[-1]))


def wait_for_flow_runs(
    uris: list[str], timeout: float, on_change: Callable[[dict[str, str]], None]
) -> dict[str, str]:
    """State name of the latest process-run flow run of each raw URI, once all are done."""
    states: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        latest = {uri: runs[-1] for uri, runs in process_runs_of(uris).items() if runs}
        current = {uri: run.state.type.value for uri, run in latest.items()}
        if current != states:
            states = current
            on_change(states)
        if len(latest) == len(uris) and all(_done(run) for run in latest.values()):
            return states
        time.sleep(2.0)
    raise TimeoutError(f"runs not finished after {timeout:.0f} s: {states}")


def simulate_and_announce(
    stack: LocalStack,
    settings: Settings,
    runs: int,
    events: int,
    shape: tuple[int, int],
    pedestal_events: int,
    log: Callable[[str], None],
) -> list[DemoRun]:
    """Simulate the pedestal run and the data runs, announcing each as it lands."""
    store = store_for(settings)
    logbook = DaqLogbook(settings.daqdb_url)
    logbook.create_schema()
    first = (logbook.last_run_number() or 0) + 1
    plan = [("pedestal", pedestal_events)] + [
        (DATA_KINDS[i % len(DATA_KINDS)], events) for i in range(runs)
    ]
    arrived = []
    for offset, (kind, n_events) in enumerate(plan):
        run_number = first + offset
        log(f"DAQ: run {run_number:05d} ({kind}, {n_events} pictures {shape[0]}×{shape[1]})")
        run = simulate_one(store, logbook, run_number, n_events, kind, shape=shape, seed=run_number)
        uri = announce(stack, store, run)
        log(f"  uploaded {run.key} and notified the bridge")
        arrived.append(DemoRun(run=run, uri=uri, arrived_at=datetime.now(UTC)))
    return arrived


def outputs(catalog: Catalog, settings: Settings, runs: list[int]) -> list[str]:
    """Per run: the reconstructed file, and the quality flag with its reason."""
    lines = []
    for record in catalog.runs(min(runs), max(runs)):
        for reco in record.reco:
            lines.append(f"run {record.run:05d}  reco     {reco.uri}")
        for report in record.quality:
            why = f" ({report.reason})" if report.reason else ""
            lines.append(f"run {record.run:05d}  quality  {report.flag}{why}  {report.uri}")
    return lines


def latencies(catalog: Catalog, arrived: list[DemoRun]) -> list[str]:
    """Per data run: seconds from its arrival (the notification) to its quality flag."""
    numbers = [a.run.run_number for a in arrived]
    flagged = {
        record.run: min(report.updated_at for report in record.quality)
        for record in catalog.runs(min(numbers), max(numbers))
        if record.quality
    }
    return [
        f"run {a.run.run_number:05d}  arrival → quality flag  "
        f"{(flagged[a.run.run_number] - a.arrived_at).total_seconds():.1f} s"
        for a in arrived
        if a.run.run_number in flagged
    ]


def describe(addresses: StackAddresses, settings: Settings) -> list[str]:
    """Where to look, for the final summary."""
    return [
        f"Prefect UI        {addresses.ui_url}",
        f"Quality trends    {addresses.bridge_url}/trends",
        f"Object store      {settings.store_url}",
        f"Catalog           {settings.catalog_url}",
        f"DAQ logbook       {settings.daqdb_url}",
        f"Tape              {settings.tape_url}",
        f"Service logs      {settings.data_dir / 'stack' / 'logs'}",
    ]
