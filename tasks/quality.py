"""quality: monitoring histograms, reference comparison and flag for one reconstructed
run (``reco.quality``), recorded in the catalog, shown as Prefect artifacts, and an
alarm event when the run is not good."""

from __future__ import annotations

import functools
import io
import json
import re
import uuid

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.tasks import exponential_backoff

from cygno.events import QUALITY_ALARM, run_resource_id
from cygno.reco import quality as dq
from cygno.reco.pedestal import PedestalMaps
from cygno.storage import keys
from cygno.storage.lineage import Product, digest, is_done, lineage
from cygno.tasks import resources
from cygno.tasks.models import QualityOutcome, RecoOutput


def artifact_key(kind: str, reco: RecoOutput) -> str:
    """Prefect artifact keys allow lower-case letters, digits and dashes only."""
    raw = f"{kind}-{reco.tag}-run{reco.run:05d}-{reco.reco_version}".lower()
    return re.sub(r"[^a-z0-9-]+", "-", raw).strip("-")


def public_url() -> str:
    s = resources.settings()
    return (s.public_url or f"http://{s.bridge_host}:{s.bridge_port}").rstrip("/")


def _reference(reco: RecoOutput, store, picture_shape: list[int] | None) -> dq.Reference | None:
    """The latest earlier good run like this one, if any: same tag and run type, same
    reco version (so the same configuration) and the same picture geometry. A run unlike
    every candidate gets no reference rather than a comparison that means nothing."""
    for run in resources.catalog().reference_runs(reco.run, reco.tag, reco.reco_version):
        prefix = keys.quality_prefix(reco.reco_version, reco.tag, run)
        if not store.exists(prefix + "summary.json"):
            continue
        reference = dq.load_reference(store, prefix)
        if reference.summary.get("picture_shape") == picture_shape:
            return reference
    return None


def _pedestal_monitor(key: str) -> tuple[dq.PedestalMonitor, tuple[int, int]]:
    """The monitoring view and picture shape of the pedestal maps at ``key``, made once
    per content: loading and histogramming a LIME map was most of a short run's quality
    step, and every run made with the same maps needs the same view."""
    store = resources.store()
    return _monitor_of(store.url, key, store.etag(key))


def monitor_key(maps_key: str) -> str:
    """Where the monitoring view of the maps at ``maps_key`` is kept:
    ``quality/pedestals/<tag>/run<N>/ped-<lineage>.json``."""
    return f"{keys.QUALITY_PREFIX}{maps_key.removesuffix('.npz')}.json"


@functools.lru_cache(maxsize=4)
def _monitor_of(store_url: str, key: str, etag: str) -> tuple[dq.PedestalMonitor, tuple[int, int]]:
    """Kept in the process by store, key and etag (new maps under the same key are a new
    entry), and in the store for the next process, valid while the maps' etag and the
    monitoring configuration are those it was made for."""
    store = resources.store()
    kept = monitor_key(key)
    made_for = {"maps_etag": etag, "config": digest(dq.QualityConfig())}
    if store.exists(kept):
        doc = json.loads(store.get_bytes(kept))
        if doc.get("made_for") == made_for:
            return dq.PedestalMonitor.from_json(doc["monitor"]), tuple(doc["shape"])
    maps = PedestalMaps.load(io.BytesIO(store.get_bytes(key)))
    monitor = dq.pedestal_monitor(maps)
    doc = {"made_for": made_for, "shape": list(maps.shape), "monitor": monitor.to_json()}
    store.put_bytes(kept, json.dumps(doc, allow_nan=False).encode())
    return monitor, maps.shape


def quality_product(reco: RecoOutput, thresholds: dq.Thresholds) -> Product:
    """The quality report of ``reco`` judged with ``thresholds``."""
    made_by = lineage("quality", reco=reco.lineage, thresholds=digest(thresholds))
    key = keys.quality_prefix(reco.reco_version, reco.tag, reco.run) + "summary.json"
    return Product(key, made_by)


#: Namespace of alarm ids: uuid5(ALARM_NAMESPACE, "<summary URI>@<quality lineage>").
ALARM_NAMESPACE = uuid.UUID("0d6f4a52-3c1e-5b7a-8e29-4f1c6a7b9d30")


def _alarm(reco: RecoOutput, outcome: QualityOutcome, url: str, judged: str) -> None:
    """Post the alarm now: delivered, or an error naming the Prefect API (never lost in
    a background queue). Its id is the judged output's (``judged``: summary URI and
    lineage), so the server keeps one event however often a retry sends it again."""
    resources.post_events(
        [
            {
                "id": str(uuid.uuid5(ALARM_NAMESPACE, judged)),
                "event": QUALITY_ALARM,
                "resource": {
                    "prefect.resource.id": run_resource_id(reco.tag, reco.run),
                    "prefect.resource.name": f"{reco.tag} run {reco.run}",
                    "cygno.run": str(reco.run),
                    "cygno.tag": reco.tag,
                    "cygno.reco_version": reco.reco_version,
                    "cygno.flag": outcome.flag,
                },
                "payload": {"flag": outcome.flag, "reason": outcome.reason, "summary": url},
            }
        ]
    )


@task(
    name="quality",
    retries=2,
    retry_delay_seconds=exponential_backoff(backoff_factor=5),
    timeout_seconds=1800,
)
def quality(
    reco: RecoOutput, thresholds: dq.Thresholds = dq.Thresholds(), trends: bool = True
) -> QualityOutcome:
    """Histograms, flag → store, catalog, artifacts; skipped when this output was already
    judged with these thresholds. The artifacts link the plots, which the plot server
    (deployments/webapp.py) draws when first shown: drawing them here took seconds per
    run, longer than reconstructing a short one. ``trends``: update the tag's trends too
    (reprocess-runs does once, after its last run, with :func:`quality_trends`)."""
    store, catalog = resources.store(), resources.catalog()
    prefix = keys.quality_prefix(reco.reco_version, reco.tag, reco.run)
    product = quality_product(reco, thresholds)
    summary_key = product.key
    judged = f"{store.uri(summary_key)}@{product.lineage}"
    done = catalog.quality_report(reco.run, reco.tag, reco.reco_version)
    if done is not None and is_done(store, product, done.lineage):
        outcome = QualityOutcome(
            reco.run,
            reco.tag,
            reco.reco_version,
            done.flag,
            done.reason or "",
            summary_key,
            dict(done.summary or {}),
        )
        if outcome.flag != "good":  # again: a retry after the API failed must not lose it
            _alarm(reco, outcome, f"{public_url()}/files/{summary_key}", judged)
        return outcome

    pedestal, picture_shape = None, None
    if reco.pedestal is not None:
        pedestal, shape = _pedestal_monitor(reco.pedestal.key)
        picture_shape = list(shape)
    report = dq.run_quality(
        store.get_bytes(reco.key),
        store,
        prefix,
        pedestal=pedestal,
        reference=_reference(reco, store, picture_shape),
        fe55=dq.fe55_from_logbook(resources.logbook().get(reco.run)),
        thresholds=thresholds,
        extra={
            "tag": reco.tag,
            "reco_version": reco.reco_version,
            "picture_shape": picture_shape,
        },
        plots=False,
    )
    catalog.upsert_quality_report(
        run=reco.run,
        tag=reco.tag,
        reco_version=reco.reco_version,
        uri=store.uri(summary_key),
        flag=report.flag,
        summary=report.summary,
        reason=report.reason,
        lineage=product.lineage,
    )
    if trends:
        _write_trends(reco.tag, reco.reco_version)

    base = public_url()
    create_markdown_artifact(
        markdown=dq.report_markdown(report, base),
        key=artifact_key("quality", reco),
        description=f"Quality of {reco.tag} run {reco.run} ({reco.reco_version}): {report.flag}",
    )
    create_table_artifact(
        table=[
            {"quantity": name, "value": value}
            for name, value in report.summary.items()
            if not isinstance(value, dict | list)
        ],
        key=artifact_key("quality-numbers", reco),
        description=f"Summary numbers of {reco.tag} run {reco.run} ({reco.reco_version})",
    )
    outcome = QualityOutcome(
        reco.run,
        reco.tag,
        reco.reco_version,
        report.flag,
        report.reason,
        summary_key,
        report.summary,
    )
    if report.flag != "good":
        _alarm(reco, outcome, f"{base}/files/{summary_key}", judged)
    return outcome


def _write_trends(tag: str, reco_version: str) -> None:
    points = resources.catalog().trend_points(tag, reco_version)
    dq.write_trends(points, resources.store(), dq.trend_prefix(reco_version, tag), plots=False)


@task(name="quality-trends", retries=2, retry_delay_seconds=5, timeout_seconds=600)
def quality_trends(tag: str, reco_version: str) -> None:
    """Update the trends of one tag and reco version from every judged run (their plots
    are drawn when first shown)."""
    _write_trends(tag, reco_version)
