"""quality in process-run: files under quality/, catalog summary, artifacts with plot
links through the platform's HTTP app (which draws the plots when first shown), and the
alarm event for a run that is not good."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
import warnings

import pytest

from cygno.deployments.webapp import create_app
from cygno.events import QUALITY_ALARM
from cygno.flows.process_run import process_run
from cygno.reco.config import load_config, reco_version
from cygno.storage import keys
from cygno.tasks.models import RecoOutput
from cygno.tasks.quality import artifact_key
from tests.flows.harness import artifact, events_named, wait_for

with warnings.catch_warnings():  # starlette 1.x prefers httpx2 for its TestClient
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


def test_a_sparking_run_is_flagged_plotted_and_raises_an_alarm(plat):
    _, run = plat.simulate(runs=1, events=4, spark_fraction=1.0)  # all vetoed
    started = dt.datetime.now(dt.UTC)
    result = process_run(plat.store.uri(run.key))

    version = reco_version(load_config(plat.settings.reco_config))
    prefix = keys.quality_prefix(version, "LNGS", run.run_number)
    names = {key.rsplit("/", 1)[-1] for key in plat.store.list(prefix)}
    assert "summary.json" in names and "plots.json" in names
    report = plat.catalog.quality_report(run.run_number, "LNGS", version)
    assert report.flag == result["quality_flag"] != "good"
    assert "no pictures" in report.reason

    reco = RecoOutput(run.run_number, "LNGS", version, "", "", 0, 0)
    markdown = artifact(artifact_key("quality", reco))["data"]
    links = re.findall(r"\]\(http://127\.0\.0\.1:4300(/files/[^)]+\.png)\)", markdown)
    assert links and all(link.startswith(f"/files/{prefix}") for link in links)
    plots = TestClient(create_app(plat.settings, store=plat.store))  # no lifespan: no events
    for link in links:
        response = plots.get(link)
        assert response.status_code == 200 and response.content.startswith(b"\x89PNG"), link
    assert {key for key in plat.store.list(prefix) if key.endswith(".png")} == {
        link.removeprefix("/files/") for link in links
    }  # drawn once, then kept in the store
    table = artifact(artifact_key("quality-numbers", reco))["data"]
    assert "pictures" in str(table)

    resource = f"cygno.run.LNGS.{run.run_number:05d}"

    # Earlier tests of the session may have raised alarms for a run with the same number.
    def alarms() -> list[dict]:
        return [
            event
            for event in events_named(QUALITY_ALARM, resource)
            if dt.datetime.fromisoformat(event["occurred"]) >= started
        ]

    (alarm,) = wait_for(alarms, what="the alarm event")
    assert alarm["resource"]["cygno.flag"] == report.flag
    assert alarm["payload"]["reason"]

    # A rerun (or a retry after the Prefect API failed) sends the alarm of the judged
    # output again, under the same id: the server keeps one.
    process_run(plat.store.uri(run.key))
    time.sleep(1.5)  # three persister flushes
    assert [event["id"] for event in alarms()] == [alarm["id"]]


def test_the_pedestal_view_is_kept_for_the_next_process_and_follows_new_maps(plat):
    import dataclasses
    import io

    from cygno.reco import quality as dq
    from cygno.reco.pedestal import PedestalMaps
    from cygno.tasks.quality import _monitor_of, _pedestal_monitor, monitor_key

    _, run = plat.simulate(runs=1, events=4)
    process_run(plat.store.uri(run.key))
    (maps_key,) = [key for key in plat.store.list("pedestals/") if key.endswith(".npz")]
    kept = json.loads(plat.store.get_bytes(monitor_key(maps_key)))
    assert kept["made_for"]["maps_etag"] == plat.store.etag(maps_key)

    _monitor_of.cache_clear()  # as in the next flow process
    monitor, shape = _pedestal_monitor(maps_key)
    assert list(shape) == kept["shape"]
    assert dq.PedestalMonitor.from_json(kept["monitor"]).noise_mean == monitor.noise_mean

    maps = PedestalMaps.load(io.BytesIO(plat.store.get_bytes(maps_key)))
    buffer = io.BytesIO()  # new maps under the same key: the kept view no longer holds
    dataclasses.replace(maps, sigma=2 * maps.sigma).save(buffer)
    plat.store.put_bytes(maps_key, buffer.getvalue())
    _monitor_of.cache_clear()
    renewed, _ = _pedestal_monitor(maps_key)
    assert renewed.noise_mean == pytest.approx(2 * monitor.noise_mean)
    assert json.loads(plat.store.get_bytes(monitor_key(maps_key)))["made_for"]["maps_etag"] == (
        plat.store.etag(maps_key)
    )


def test_the_reference_is_a_run_of_the_same_geometry_or_none(plat):
    from cygno.reco import quality as dq
    from cygno.tasks.quality import _reference
    from tests.reco.test_quality import _narrow_run

    version = reco_version(load_config(plat.settings.reco_config))
    prefix = keys.quality_prefix(version, "LNGS", 1)
    lime = [2304, 2304]
    report = dq.run_quality(
        _narrow_run(), plat.store, prefix, extra={"picture_shape": lime, "reco_version": version}
    )
    plat.catalog.upsert_quality_report(
        run=1, tag="LNGS", reco_version=version, uri=plat.store.uri(prefix + "summary.json"),
        flag="good", summary=report.summary,
    )  # fmt: skip
    later = RecoOutput(2, "LNGS", version, "", "", 0, 0)

    assert _reference(later, plat.store, lime).run == 5  # the reference file's own run
    assert _reference(later, plat.store, [256, 256]) is None  # a 256×256 run: no reference
