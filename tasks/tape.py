"""Tape: archive a raw file (copy, read back, compare adler32, record) and recall one."""

from __future__ import annotations

from prefect import task
from prefect.tasks import exponential_backoff

from cygno.storage.tape import TapeConflictError
from cygno.tasks import resources
from cygno.tasks.models import RawFile
from cygno.tasks.retry import retry_unless

#: A different file on tape, or none at all: a human decides.
_retry_unless_conflict = retry_unless(TapeConflictError, FileNotFoundError)


@task(
    name="archive-to-tape",
    retries=3,
    retry_delay_seconds=exponential_backoff(backoff_factor=10),
    retry_jitter_factor=0.5,
    retry_condition_fn=_retry_unless_conflict,
    timeout_seconds=3600,
    tags=["tape"],
)
def archive_to_tape(raw: RawFile, force: bool = False) -> str:
    """Give ``raw`` a verified tape copy; skipped when the catalog already records one
    as ok (``force`` re-checks the tape anyway, as the reconciler does for lost copies).

    "ok" is recorded only from bytes read in this call: a new copy is read back by the
    endpoint's archive, a copy already on tape is read back here, never accepted on
    its namespace checksum (one flipped byte leaves that unchanged).
    """
    catalog, tape = resources.catalog(), resources.tape()
    if not force:
        for copy in catalog.tape_copies(raw_uri=raw.uri):
            if copy.state == "ok" and copy.adler32 == raw.adler32:
                return copy.tape_uri
    tape_uri = tape.uri(raw.key)
    if tape.state(raw.key) != "missing":
        if not tape.verify(raw.key, raw.adler32):
            _record_bad_copy(raw, tape_uri, tape.checksum(raw.key))
            raise TapeConflictError(
                f"{tape_uri} is on tape but does not read back as adler32 {raw.adler32} "
                f"(the raw file {raw.uri}); left untouched for a human to resolve"
            )
        catalog.record_tape_copy(raw.uri, tape_uri, raw.adler32, raw.size, verified=True)
        return tape_uri
    try:
        copy = tape.archive(resources.store(), raw.key, expected_adler32=raw.adler32)
    except TapeConflictError:
        _record_bad_copy(raw, tape_uri, tape.checksum(raw.key))
        raise
    catalog.record_tape_copy(raw.uri, copy.uri, copy.adler32, copy.size, verified=True)
    return copy.uri


def _record_bad_copy(raw: RawFile, tape_uri: str, held: str | None) -> None:
    """A copy that did not read back as the raw file: "mismatch" in the catalog."""
    catalog = resources.catalog()
    if any(copy.tape_uri == tape_uri for copy in catalog.tape_copies(raw_uri=raw.uri)):
        catalog.mark_tape_copy(tape_uri, "mismatch")
    else:
        catalog.record_tape_copy(raw.uri, tape_uri, held or "00000000", None, verified=False)


@task(
    name="recall-from-tape",
    retries=3,
    retry_delay_seconds=exponential_backoff(backoff_factor=30),
    retry_condition_fn=_retry_unless_conflict,
    timeout_seconds=6 * 3600,
    tags=["tape"],
)
def recall_from_tape(key: str) -> str:
    """Bring a raw file back to the store from tape (no-op when it is there); its URI."""
    store = resources.store()
    if not store.exists(key):
        resources.tape().recall(key, store)
    return store.uri(key)
