"""Tape: archive a raw file (copy, read back, compare adler32, record) and recall one."""

from __future__ import annotations

from prefect import task
from prefect.tasks import exponential_backoff

from cygno.tasks import resources
from cygno.tasks.models import RawFile


class TapeMismatch(RuntimeError):
    """The tape copy's adler32 differs from the raw file's: recorded, never overwritten."""


@task(
    name="archive-to-tape",
    retries=3,
    retry_delay_seconds=exponential_backoff(backoff_factor=10),
    retry_jitter_factor=0.5,
    timeout_seconds=3600,
    tags=["cygno", "tape"],
)
def archive_to_tape(raw: RawFile) -> str:
    """Give ``raw`` a verified tape copy (skipped when the catalog already records one)."""
    catalog = resources.catalog()
    for copy in catalog.tape_copies(raw_uri=raw.uri):
        if copy.state == "ok" and copy.adler32 == raw.adler32:
            return copy.tape_uri
    copy = resources.tape().archive(resources.store(), raw.key)
    verified = copy.adler32 == raw.adler32
    catalog.record_tape_copy(raw.uri, copy.uri, copy.adler32, copy.size, verified=verified)
    if not verified:
        raise TapeMismatch(
            f"tape copy {copy.uri} has adler32 {copy.adler32}, raw file {raw.adler32}"
        )
    return copy.uri


@task(
    name="recall-from-tape",
    retries=3,
    retry_delay_seconds=exponential_backoff(backoff_factor=30),
    timeout_seconds=6 * 3600,
    tags=["cygno", "tape", "recall"],
)
def recall_from_tape(key: str) -> str:
    """Bring a raw file back to the store from tape (no-op when it is there); its URI."""
    store = resources.store()
    if not store.exists(key):
        resources.tape().recall(key, store)
    return store.uri(key)
