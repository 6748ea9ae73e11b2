"""ingest: read the raw file once — MIDAS structure, adler32 + md5, event count — and
catalogue it; a corrupt file goes to ``quarantine/`` with a JSON reason and the task
fails with that reason (not retried: the bytes will not get better)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from prefect import task
from prefect.tasks import exponential_backoff

from cygno.storage import keys, midas
from cygno.tasks import resources
from cygno.tasks.models import RawFile
from cygno.tasks.retry import retry_unless


class CorruptRawFile(RuntimeError):
    """The raw file failed validation and was quarantined; the message says why."""


#: Corrupt or missing files do not get better by waiting; everything else might.
_retry_if_transient = retry_unless(CorruptRawFile, FileNotFoundError)


def raw_location(raw_uri: str) -> tuple[str, str, int]:
    """``raw_uri`` (full URL or store key) → (key, tag, run); ValueError if not a raw key."""
    store = resources.store()
    key = store.key_of(raw_uri) if "://" in raw_uri else raw_uri
    tag, run = keys.parse_raw_key(key)
    return key, tag, run


def _quarantine(key: str, tag: str, run: int, reason: str, report) -> str:
    store = resources.store()
    target = keys.quarantine_key(key)
    store.move(key, target)
    record = {
        "raw_key": key,
        "quarantine_key": target,
        "run": run,
        "tag": tag,
        "reason": reason,
        "defects": [str(d) for d in report.defects],
        "size": report.size,
        "adler32": report.adler32,
        "quarantined_at": datetime.now(UTC).isoformat(),
    }
    store.put_bytes(keys.quarantine_reason_key(target), json.dumps(record, indent=2).encode())
    _catalogue(store.uri(target), tag, run, report, state="quarantined", reason=reason)
    return target


def _catalogue(uri: str, tag: str, run: int, report, **fields) -> None:
    """Record the run and the raw file as ``report`` found it."""
    catalog = resources.catalog()
    catalog.upsert_run(run, tag)
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


def _raise_missing(store, key: str) -> None:
    reason_key = keys.quarantine_reason_key(keys.quarantine_key(key))
    if store.exists(reason_key):
        reason = json.loads(store.get_bytes(reason_key))["reason"]
        raise CorruptRawFile(f"already quarantined: {reason}")
    raise FileNotFoundError(f"{key}: no such raw file in {store.url}")


@task(
    name="ingest",
    retries=2,
    retry_delay_seconds=exponential_backoff(backoff_factor=5),
    retry_jitter_factor=0.5,
    retry_condition_fn=_retry_if_transient,
    timeout_seconds=1800,
)
def ingest(raw_uri: str) -> RawFile:
    """Validate and catalogue one raw file (skipped when the catalog already has it)."""
    key, tag, run = raw_location(raw_uri)
    store, catalog = resources.store(), resources.catalog()
    uri = store.uri(key)
    if not store.exists(key):
        _raise_missing(store, key)
    known = catalog.raw_file(uri)
    if known is not None and known.state == "ingested" and known.size == store.size(key):
        return RawFile(
            uri, key, run, tag, known.size, known.adler32, known.md5, known.events, known.pictures
        )
    with store.open(key, "rb") as stream:
        report = midas.validate(stream)
    if not report.ok:
        reason = f"{key}: {report.defects[0]}"
        if len(report.defects) > 1:
            reason += f" (+{len(report.defects) - 1} more defects)"
        target = _quarantine(key, tag, run, reason, report)
        raise CorruptRawFile(f"{reason}; moved to {target}")
    _catalogue(uri, tag, run, report, state="ingested")
    return RawFile(
        uri, key, run, tag, report.size, report.adler32, report.md5, report.events, report.pictures
    )
