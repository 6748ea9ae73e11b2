"""The Prefect API as a fault: one that accepts and never answers (a real TCP listener
on 127.0.0.1 that stays silent) or refuses. Every call our code makes to it — the
sentinel's, the event bridge's, the developer tooling's — ends within the bounds the
settings give (timeout x attempts) with one message naming the API's URL, and records
nothing. And the sentinel against a real API: its events carry the object's ETag as the
bucket notification does (one trigger bucket for one upload), and it reads every page
of flow runs."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import boto3
import pytest
import yaml
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.states import Crashed

from cygno.deployments import automations
from cygno.deployments.event_bridge import EventPoster, parse_notification, raw_arrived_event
from cygno.devtools import demo, recover, screenshot
from cygno.devtools.local_stack import REPO_ROOT
from cygno.events import RAW_ARRIVED
from cygno.resources import PrefectApiUnavailable, prefect_environment
from cygno.settings import Settings, get_settings
from cygno.storage import keys
from cygno.storage.catalog import Catalog
from cygno.tasks import sentinel as tasks
from tests.flows.harness import events_named, platform, s3_overrides, wait_for

#: Generous against Prefect's own bounds (a minute per attempt, five retries: ~7 min);
#: the settings below allow about 1 s x 2 attempts plus a 2 s back-off.
BOUND_SECONDS = 30


@pytest.fixture(params=["hangs", "down"])
def dead_api(request, silent_port, closed_port, tmp_path, monkeypatch):
    """PREFECT_API_URL on a port that never answers, or that nobody listens on."""
    port = silent_port if request.param == "hangs" else closed_port
    url = f"http://127.0.0.1:{port}/api"
    monkeypatch.setenv("CYGNO_PREFECT_API_TIMEOUT_SECONDS", "1")
    monkeypatch.setenv("CYGNO_PREFECT_API_RETRIES", "1")
    monkeypatch.setenv("CYGNO_CATALOG_URL", f"sqlite:///{tmp_path / 'catalog.db'}")
    monkeypatch.setenv("CYGNO_STORE_URL", (tmp_path / "store").as_uri())
    get_settings.cache_clear()
    with temporary_settings(updates={PREFECT_API_URL: url}):
        yield url
    get_settings.cache_clear()


def _fails_naming(url: str, call) -> str:
    started = time.monotonic()
    with pytest.raises(PrefectApiUnavailable) as caught:
        call()
    assert time.monotonic() - started < BOUND_SECONDS
    message = str(caught.value)
    assert url in message and ("did not answer within 1 s" in message or "unreachable" in message)
    return message


def test_the_sentinel_fails_within_bounds_naming_a_dead_api(dead_api):
    uri = (get_settings().data_dir / "x").as_uri()  # any URI: nothing is read
    raw = {"uri": uri, "key": keys.raw_key("LNGS", 5), "tag": "LNGS", "run": 5, "size": 1}
    _fails_naming(dead_api, tasks.crashed_raw_files.fn)
    _fails_naming(dead_api, lambda: tasks.announce.fn([raw | {"etag": "abc"}]))
    store_uri = f"{get_settings().store_url}/{keys.raw_key('LNGS', 5)}"
    _fails_naming(dead_api, lambda: tasks.restart.fn([store_uri]))
    assert Catalog(get_settings().catalog_url).failures() == []  # nothing counted


def test_the_tooling_fails_within_bounds_naming_a_dead_api(dead_api, capsys):
    _fails_naming(dead_api, lambda: demo.process_runs_of(None))
    _fails_naming(dead_api, lambda: screenshot.quality_artifact_url("http://ui", dead_api))
    shipped = str(REPO_ROOT / "deployments" / "automations.yaml")
    commands = [
        lambda: recover.main(["--pool", "cygno-process"]),
        lambda: automations.main([shipped]),
    ]
    for command in commands:
        started = time.monotonic()
        assert command() == 1
        assert time.monotonic() - started < BOUND_SECONDS
        (line,) = capsys.readouterr().err.splitlines()
        assert line.startswith("cygno: the Prefect API at ") and dead_api in line


def test_a_flow_process_with_the_stacks_environment_ends_naming_a_silent_api(silent_port):
    """The flow engine's own calls (a deployment's flow process started by a worker):
    bounded by the environment the local stack gives its processes."""
    url = f"http://127.0.0.1:{silent_port}/api"
    bounds = prefect_environment(Settings(prefect_api_timeout_seconds=1, prefect_api_retries=1))
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", "from cygno.flows.sentinel import sentinel; sentinel()"],
        env={**os.environ, **bounds, "PREFECT_API_URL": url},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert time.monotonic() - started < 2 * BOUND_SECONDS  # a Python start included
    assert done.returncode != 0 and url in done.stderr


def test_the_bridge_keeps_events_and_says_which_api_is_silent(dead_api):
    async def scenario() -> tuple[EventPoster, int]:
        poster = EventPoster(dead_api, timeout=1, drain_timeout=0.1)
        await poster.start()
        poster.offer([{"event": RAW_ARRIVED, "id": "00000000-0000-0000-0000-000000000001"}])
        deadline = time.monotonic() + BOUND_SECONDS
        while poster.last_error is None and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        pending = poster.pending
        await poster.stop()
        return poster, pending

    poster, pending = asyncio.run(scenario())
    assert pending == 1 and poster.delivered == poster.dropped == 0  # kept for a retry
    assert dead_api in poster.last_error
    assert "did not answer within 1 s" in poster.last_error or "unreachable" in poster.last_error


def _trigger_labels() -> list[str]:
    """What the process-run trigger tells uploads apart by (prefect.yaml's for_each)."""
    config = yaml.safe_load((REPO_ROOT / "prefect.yaml").read_text())
    (deployment,) = [d for d in config["deployments"] if d["name"] == "process-run"]
    return deployment["triggers"][0]["for_each"]


def test_a_sentinel_event_and_the_notification_of_one_upload_share_a_trigger_bucket(
    prefect_api, s3_server, tmp_path, monkeypatch
):
    bucket = s3_server.new_bucket()
    with platform(tmp_path / "platform", monkeypatch, **s3_overrides(s3_server, bucket)) as plat:
        key = keys.raw_key("LNGS", 7)
        plat.store.put_bytes(key, b"an upload the notification and the sentinel both saw")
        s3 = boto3.client("s3", endpoint_url=s3_server.endpoint_url, region_name="us-east-1")
        etag = s3.head_object(Bucket=bucket, Key=key)["ETag"]  # what S3 notifies
        body = demo.minio_notification(bucket, key, plat.store.size(key), etag)
        (record,), _ = parse_notification(json.dumps(body).encode())
        uri = plat.store.uri(key)
        notified = raw_arrived_event(record, uri, "LNGS", 7)["resource"]

        assert tasks.announce.fn(tasks.unseen_raw_files.fn()) == 1

        (event,) = wait_for(lambda: events_named(RAW_ARRIVED, uri), what="sentinel event")
        labels = _trigger_labels()
        assert "cygno.etag" in labels
        assert {k: event["resource"].get(k) for k in labels} == {k: notified[k] for k in labels}


def test_the_sentinel_finds_a_crashed_run_beyond_the_first_page(plat):
    since = datetime.now(UTC) - timedelta(minutes=1)
    uris = [plat.store.uri(keys.raw_key("LNGS", 900 + i)) for i in range(7)]
    with get_client(sync_client=True) as client:
        flow_id = client.create_flow_from_name("process-run")
        deployment_id = client.create_deployment(flow_id=flow_id, name="process-run")
        runs = [
            client.create_flow_run_from_deployment(deployment_id, parameters={"raw_uri": uri})
            for uri in uris
        ]
        client.set_flow_run_state(runs[-1].id, Crashed(), force=True)  # the newest: page 3
        read = tasks.process_runs_since(client, since, page=3)
    ours = [r.id for r in read if (r.parameters or {}).get("raw_uri") in uris]
    assert sorted(ours) == sorted(r.id for r in runs)  # each once, none missed

    assert uris[-1] in tasks.crashed_raw_files.fn(page=3)

    @flow
    def sentinel_retrying_restart(uri: str) -> list[int]:
        """A retry of restart in the same sentinel run (as after a lost answer)."""
        return [tasks.restart.fn([uri]), tasks.restart.fn([uri])]

    assert sentinel_retrying_restart(uris[-1]) == [1, 1]
    with get_client(sync_client=True) as client:
        again = [
            r
            for r in tasks.process_runs_since(client, since)
            if (r.parameters or {}).get("raw_uri") == uris[-1]
        ]
    assert len(again) == 2 and again[-1].deployment_id == deployment_id  # started once
    (failure,) = plat.catalog.failures()
    assert (failure.run, failure.step) == (906, "process-run")
