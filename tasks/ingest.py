"""ingest: read the raw file once — MIDAS structure, adler32 + md5, event count — and
catalogue it; a corrupt file goes to ``quarantine/`` with a JSON reason and the task
fails with that reason (not retried: the bytes will not get better)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import NoReturn

from prefect import task
from prefect.tasks import exponential_backoff

from cygno.storage import keys, midas
from cygno.storage.catalog.runs import RunHasRawFile
from cygno.storage.lineage import Product, is_done
from cygno.tasks import resources
from cygno.tasks.models import RawFile
from cygno.tasks.retry import retry_unless
from cygno.tasks.versions import supersede


class CorruptRawFile(RuntimeError):
    """The raw file failed validation and was quarantined; the message says why."""


class NotTheRunsFile(Exception):
    """The notified key is not a raw file of its run: nothing is recorded against the
    run (a stray or forged notification must never abandon a good run)."""


class NoSuchRawFile(NotTheRunsFile, FileNotFoundError):
    """No object under the key (never uploaded, or already quarantined)."""


class SecondRawFile(NotTheRunsFile, ValueError):
    """The run already has an ingested raw file under another key (``.mid`` beside
    ``.mid.gz``): one run, one raw file, so the second is refused, not ingested."""


#: Corrupt or missing files do not get better by waiting; everything else might.
_retry_if_transient = retry_unless(CorruptRawFile, NotTheRunsFile)


def raw_location(raw_uri: str) -> tuple[str, str, int]:
    """``raw_uri`` (full URL or store key) → (key, tag, run); ValueError if not a raw key."""
    store = resources.store()
    key = store.key_of(raw_uri) if "://" in raw_uri else raw_uri
    tag, run = keys.parse_raw_key(key)
    return key, tag, run


def quarantined_versions(store, key: str) -> list[str]:
    """The quarantine keys that ``key`` has been moved to, oldest first."""
    tag, run = keys.parse_raw_key(key)
    first = keys.quarantine_key(key)
    found = []
    for candidate in store.list(first.rsplit("/", 1)[0] + "/"):
        try:
            if keys.parse_quarantine_key(candidate) == (tag, run) and keys.raw_suffix(
                candidate
            ) == keys.raw_suffix(key):
                found.append(candidate)
        except ValueError:
            continue  # the JSON reasons beside, other runs
    return sorted(found, key=keys.quarantine_version)


def _quarantine(key: str, tag: str, run: int, reason: str, report) -> str:
    """Move ``key`` to the next free quarantine version (an earlier corrupt upload of
    the run and its reason stay as they are) and write the reason beside it."""
    store = resources.store()
    earlier = quarantined_versions(store, key)
    version = keys.quarantine_version(earlier[-1]) + 1 if earlier else 1
    target = keys.quarantine_key(key, version=version)
    try:
        store.move(key, target)
    except FileNotFoundError:
        _raise_missing(store, key, f"{reason}; a concurrent run quarantined it first")
    record = {
        "raw_key": key,
        "quarantine_key": target,
        "run": run,
        "tag": tag,
        "reason": reason,
        "defects": [str(d) for d in report.defects],
        "more_defects": report.more_defects,
        "size": report.size,
        "adler32": report.adler32,
        "quarantined_at": datetime.now(UTC).isoformat(),
    }
    store.put_bytes(keys.quarantine_reason_key(target), json.dumps(record, indent=2).encode())
    _catalogue(store.uri(target), tag, run, report, state="quarantined", reason=reason)
    return target


def _catalogue(uri: str, tag: str, run: int, report, **fields) -> None:
    """Record the run and the raw file as ``report`` found it; a second raw file of the
    run is refused here too, atomically (two keys of one run arriving at once)."""
    catalog = resources.catalog()
    catalog.upsert_run(run, tag)
    try:
        catalog.upsert_raw_file(
            uri=uri,
            run=run,
            tag=tag,
            size=report.size,
            adler32=report.adler32,
            md5=report.md5,
            events=report.events,
            pictures=report.pictures,
            **fields,
        )
    except RunHasRawFile as error:
        raise SecondRawFile(str(error)) from None


def _raise_missing(store, key: str, found: str | None = None) -> NoReturn:
    versions = quarantined_versions(store, key)
    if versions:
        reason_key = keys.quarantine_reason_key(versions[-1])
        if found is None and store.exists(reason_key):
            found = json.loads(store.get_bytes(reason_key))["reason"]
        found = found or "a concurrent run is quarantining it"
        raise NoSuchRawFile(f"{key} is already quarantined as {versions[-1]}: {found}")
    raise NoSuchRawFile(f"{key}: no such raw file in {store.url}; nothing recorded for the run")


def _refuse_second_file(uri: str, tag: str, run: int) -> None:
    """One raw file per run: another ingested key of the same run refuses this one
    before it is read (the catalog refuses it again when both arrive at once)."""
    known = resources.catalog().run(run, tag)
    raw = known.raw if known is not None else None
    if raw is not None and raw.state == "ingested" and raw.uri != uri:
        raise SecondRawFile(str(RunHasRawFile(uri, run, tag, raw.uri)))


@task(
    name="ingest",
    retries=2,
    retry_delay_seconds=exponential_backoff(backoff_factor=5),
    retry_jitter_factor=0.5,
    retry_condition_fn=_retry_if_transient,
    timeout_seconds=1800,
)
def ingest(raw_uri: str) -> RawFile:
    """Validate and catalogue one raw file (skipped when the catalog already has this
    content: same ETag). Other content under a catalogued key is a new version of the
    raw file (:func:`cygno.tasks.versions.supersede`)."""
    key, tag, run = raw_location(raw_uri)
    store, catalog = resources.store(), resources.catalog()
    uri = store.uri(key)
    if not store.exists(key):
        _raise_missing(store, key)
    _refuse_second_file(uri, tag, run)
    known = catalog.raw_file(uri)
    try:
        etag = store.etag(key)  # the raw file's lineage: its content, named by the store
        recorded = known.etag if known is not None and known.state == "ingested" else None
        if is_done(store, Product(key, etag), recorded):
            return RawFile(
                uri, key, run, tag, known.size, known.adler32, known.md5, known.events,
                known.pictures,
            )  # fmt: skip
        with store.open(key, "rb") as stream:
            report = midas.validate(stream)
    except FileNotFoundError:  # moved away meanwhile: a concurrent run quarantined it
        _raise_missing(store, key, f"{key} vanished while it was read")
    if not report.ok:
        reason = f"{key}: {report.reason}"
        target = _quarantine(key, tag, run, reason, report)
        raise CorruptRawFile(f"{reason}; moved to {target}")
    if known is not None and known.state == "ingested" and known.adler32 != report.adler32:
        supersede(known, report, etag)  # a corrected re-upload: the next version
    else:
        _catalogue(uri, tag, run, report, state="ingested", etag=etag)
    return RawFile(
        uri, key, run, tag, report.size, report.adler32, report.md5, report.events, report.pictures
    )
