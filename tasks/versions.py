"""A raw file uploaded again with other content becomes a new version of it.

The DAQ (or an operator) may replace ``raw/LNGS/run01234.mid.gz`` with a corrected
file. Ingest notices — the object's ETag changed, and then its adler32 — and calls
:func:`supersede`: everything made from the earlier content (its tape copy; the run's
reconstructed files and quality reports; for a pedestal run, its maps) is moved under
``superseded/<tag>/run<NNNNN>/v<n>/`` — kept, never deleted — the catalog records the
earlier version with where each of those went, and every step of process-run runs
again for the new content under the usual keys.

Each move is idempotent (a source already moved is found at its target), so a run
interrupted half-way finishes the job when it runs again.
"""

from __future__ import annotations

from typing import Any

from cygno.storage import keys
from cygno.storage.catalog.records import RawFileRecord
from cygno.tasks import resources


def _keep_in_store(key: str, target: str) -> list[dict[str, Any]]:
    store = resources.store()
    if store.exists(key):
        store.move(key, target)
    elif not store.exists(target):
        return []
    return [{"kind": "store", "was": store.uri(key), "uri": store.uri(target)}]


def _keep_on_tape(tape_uri: str, adler32: str, tag: str, run: int, version: int) -> dict:
    tape = resources.tape()
    kept: dict[str, Any] = {"kind": "tape", "was": tape_uri, "adler32": adler32, "uri": None}
    try:
        key = tape.key_of(tape_uri)
    except ValueError:
        return kept  # recorded on another endpoint: the record is all we can keep
    target = keys.superseded_key(key, tag, run, version)
    if tape.state(key) != "missing":
        tape.rename(key, target)
    if tape.state(target) != "missing":
        kept["uri"] = tape.uri(target)
    return kept


def _products(raw: RawFileRecord) -> list[str]:
    """Store keys made from the raw file's current content."""
    store = resources.store()
    known = resources.catalog().run(raw.run, raw.tag)
    products = store.list(keys.pedestal_prefix(raw.tag, raw.run))  # every lineage
    if known is not None:
        products += [store.key_of(reco.uri) for reco in known.reco if reco.uri]
        versions = {reco.reco_version for reco in known.reco}
        versions |= {report.reco_version for report in known.quality}
        for version in sorted(versions):
            products += store.list(keys.quality_prefix(version, raw.tag, raw.run))
    return products


def supersede(raw: RawFileRecord, report: Any, etag: str) -> int:
    """Keep what the current version of ``raw`` made, record it as superseded, and
    make ``report`` (the validation of the new content) the next version; returns its
    number."""
    catalog = resources.catalog()
    version = raw.version
    kept = [
        _keep_on_tape(copy.tape_uri, copy.adler32, raw.tag, raw.run, version)
        for copy in catalog.tape_copies(raw_uri=raw.uri)
    ]
    for key in _products(raw):
        kept += _keep_in_store(key, keys.superseded_key(key, raw.tag, raw.run, version))
    return catalog.supersede_raw_file(
        raw.uri,
        kept,
        size=report.size,
        adler32=report.adler32,
        md5=report.md5,
        events=report.events,
        pictures=report.pictures,
        etag=etag,
    )
