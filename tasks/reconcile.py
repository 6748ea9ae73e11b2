"""Tasks of the nightly tape reconciliation: catalog snapshots around the storage
listings (Rucio auditor style), verification of tape copies, and the report."""

from __future__ import annotations

from dataclasses import dataclass, field

from prefect import task
from prefect.artifacts import create_table_artifact

from cygno.storage import keys
from cygno.storage.audit import action_budget, audit
from cygno.tasks import resources
from cygno.tasks.models import RawFile


@dataclass(frozen=True)
class Finding:
    key: str
    status: str  # ok | rearchive | mismatch | lost-everywhere | dark-tape | dark-disk | …
    detail: str = ""


@dataclass(frozen=True)
class ReconcilePlan:
    to_archive: list[RawFile]
    to_verify: dict[str, str]  # key → catalog adler32
    findings: list[Finding] = field(default_factory=list)
    held_back: int = 0  # repairs not attempted because they exceed the safety threshold
    flagged: frozenset[str] = frozenset()  # keys whose catalog tape copy is "mismatch"
    gone: dict[str, str] = field(default_factory=dict)  # tape URI not on tape → raw URI


@task(name="catalog-snapshot", retries=2, retry_delay_seconds=10)
def catalog_snapshot() -> dict[str, dict]:
    """Raw key → what the catalog says (file and its tape copies), quarantine excluded."""
    store, catalog = resources.store(), resources.catalog()
    snapshot: dict[str, dict] = {}
    for raw in catalog.raw_files():
        if raw.state == "quarantined":
            continue
        snapshot[store.key_of(raw.uri)] = {
            "raw": RawFile(
                raw.uri,
                store.key_of(raw.uri),
                raw.run,
                raw.tag,
                raw.size,
                raw.adler32,
                raw.md5,
                raw.events,
                raw.pictures,
            ),
            "state": raw.state,
            "tape": {},
        }
    for copy in catalog.tape_copies():
        entry = snapshot.get(store.key_of(copy.raw_uri))
        if entry is not None:
            entry["tape"][copy.tape_uri] = copy.state
    return snapshot


@task(name="tape-listing", retries=2, retry_delay_seconds=30, tags=["tape"])
def tape_listing() -> dict[str, str | None]:
    """Raw files on tape: key → adler32 from the tape namespace."""
    return {e.key: e.adler32 for e in resources.tape().list(keys.RAW_PREFIX)}


@task(name="raw-listing", retries=2, retry_delay_seconds=30)
def raw_listing() -> list[str]:
    """Raw files in the object store (neighbours such as truth JSON left out)."""
    found = []
    for key in resources.store().list(keys.RAW_PREFIX):
        try:
            keys.parse_raw_key(key)
        except ValueError:
            continue
        found.append(key)
    return found


@task(name="plan-reconcile", tags=["tape"])
def plan_reconcile(
    before: dict[str, dict],
    on_tape: dict[str, str | None],
    on_disk: list[str],
    after: dict[str, dict],
    max_rearchive_fraction: float,
) -> ReconcilePlan:
    """Classify every raw file and decide the repairs, within the safety threshold."""
    with_tape_before = {k for k, v in before.items() if v["tape"]}
    with_tape_after = {k for k, v in after.items() if v["tape"]}
    tape = audit(with_tape_before, on_tape, with_tape_after)
    disk = audit(
        {k for k, v in before.items() if v["state"] == "ingested"},
        on_disk,
        {k for k, v in after.items() if v["state"] == "ingested"},
    )
    findings = [Finding(k, "dark-tape", "on tape, no catalog tape copy") for k in tape.dark]
    findings += [Finding(k, "dark-disk", "in raw/, not catalogued") for k in disk.dark]
    findings += [Finding(k, "lost-disk", "catalogued, gone from raw/") for k in disk.lost]
    stable = sorted(set(before) & set(after))
    on_disk_set = set(on_disk)
    missing = [k for k in stable if k not in on_tape]
    archivable = [k for k in missing if k in on_disk_set]
    findings += [
        Finding(k, "lost-everywhere", "neither on tape nor in raw/")
        for k in missing
        if k not in on_disk_set
    ]
    budget = action_budget(len(stable), max_rearchive_fraction)
    held_back = 0
    if len(archivable) > budget:
        held_back = len(archivable)
        findings += [
            Finding(k, "held-back", f"{held_back} copies missing > threshold {budget}")
            for k in archivable
        ]
        archivable = []
    to_verify = {k: after[k]["raw"].adler32 for k in stable if k in on_tape}
    return ReconcilePlan(
        to_archive=[after[k]["raw"] for k in archivable],
        to_verify=to_verify,
        findings=findings,
        held_back=held_back,
        flagged=frozenset(k for k in to_verify if "mismatch" in after[k]["tape"].values()),
        gone={
            uri: after[k]["raw"].uri
            for k in missing
            for uri, state in after[k]["tape"].items()
            if state != "missing"
        },
    )


@task(name="mark-missing-copies", retries=2, retry_delay_seconds=10)
def mark_missing_copies(gone: dict[str, str]) -> int:
    """Catalogued tape copies that the tape no longer lists are "missing", not ok
    (before any re-archive, which then records a fresh copy)."""
    catalog = resources.catalog()
    for tape_uri in sorted(gone):
        catalog.mark_tape_copy(tape_uri, "missing")
    return len(gone)


@task(
    name="verify-tape-copies",
    retries=1,
    retry_delay_seconds=60,
    timeout_seconds=24 * 3600,
    tags=["tape"],
)
def verify_tape_copies(
    expected: dict[str, str], read_back: bool = True, flagged: frozenset[str] = frozenset()
) -> list[Finding]:
    """Compare each tape copy with the catalog's adler32.

    Reading the bytes back (``read_back``) is the only thing that makes a copy "ok"
    (with a fresh ``verified_at``). The namespace checksum alone can only find a
    mismatch: where it agrees the copy is "listed" (bytes not read), and a copy already
    ``flagged`` as mismatch stays so. A mismatch is recorded, never overwritten.
    """
    tape, catalog, store = resources.tape(), resources.catalog(), resources.store()
    findings = []
    for key, adler32 in sorted(expected.items()):
        tape_uri, raw_uri = tape.uri(key), store.uri(key)
        held = tape.checksum(key)
        if read_back:
            good = tape.verify(key, adler32)
        elif held == adler32:
            good = None if key not in flagged else False
        else:
            good = False
        if good:
            catalog.record_tape_copy(raw_uri, tape_uri, adler32, None, verified=True)
            findings.append(Finding(key, "ok", "read back"))
            continue
        if good is None:
            findings.append(Finding(key, "listed", "namespace adler32 agrees, bytes not read"))
            continue
        if not catalog.tape_copies(raw_uri=raw_uri):
            catalog.record_tape_copy(raw_uri, tape_uri, held or "00000000", None, False)
        catalog.mark_tape_copy(tape_uri, "mismatch")
        how = "tape bytes" if read_back else "tape copy (flagged or namespace)"
        findings.append(Finding(key, "mismatch", f"{how} differ from catalog adler32 {adler32}"))
    return findings


@task(name="report-reconcile", tags=["tape"])
def report_reconcile(findings: list[Finding]) -> dict[str, int]:
    """A table artifact of everything that is not simply ok, and counts by status."""
    counts: dict[str, int] = {}
    for f in findings:
        counts[f.status] = counts.get(f.status, 0) + 1
    rows = [
        {"key": f.key, "status": f.status, "detail": f.detail} for f in findings if f.status != "ok"
    ]
    create_table_artifact(
        table=rows or [{"key": "", "status": "all ok", "detail": f"{counts.get('ok', 0)} files"}],
        key="tape-reconcile",
        description="Tape reconciliation: "
        + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())),
    )
    return counts
