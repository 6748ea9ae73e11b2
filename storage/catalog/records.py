"""What catalog queries return: plain frozen values, safe to pass around after the
session is gone (to Prefect tasks, artifacts, the CLI)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RawFileRecord:
    uri: str
    run: int
    tag: str
    size: int | None
    adler32: str | None
    md5: str | None
    events: int | None
    pictures: int | None
    state: str
    reason: str | None
    updated_at: dt.datetime
    version: int = 1
    etag: str | None = None


@dataclass(frozen=True)
class RawFileVersionRecord:
    """A superseded version of a raw file (the current one is its RawFileRecord)."""

    raw_uri: str
    run: int
    tag: str
    version: int
    size: int | None
    adler32: str | None
    md5: str | None
    events: int | None
    pictures: int | None
    etag: str | None
    ingested_at: dt.datetime
    superseded_at: dt.datetime
    kept: list[dict[str, Any]]


@dataclass(frozen=True)
class TapeCopyRecord:
    tape_uri: str
    raw_uri: str
    run: int
    tag: str
    adler32: str
    size: int | None
    state: str
    archived_at: dt.datetime
    verified_at: dt.datetime | None


@dataclass(frozen=True)
class RecoOutputRecord:
    run: int
    tag: str
    reco_version: str
    config_hash: str | None
    uri: str | None
    events: int | None
    clusters: int | None
    state: str
    updated_at: dt.datetime
    lineage: str | None = None


@dataclass(frozen=True)
class QualityRecord:
    run: int
    tag: str
    reco_version: str
    uri: str | None
    flag: str
    reason: str | None
    summary: Any
    updated_at: dt.datetime
    lineage: str | None = None


@dataclass(frozen=True)
class FailureRecord:
    run: int
    tag: str
    step: str
    message: str
    count: int
    abandoned: bool
    first_failed_at: dt.datetime
    last_failed_at: dt.datetime


@dataclass(frozen=True)
class RunRecord:
    """One run with everything the catalog knows about it, for listings and selections."""

    run: int
    tag: str
    pedestal_run: int | None
    run_type: str | None
    start_time: dt.datetime | None
    stop_time: dt.datetime | None
    events: int | None
    raw: RawFileRecord | None = None
    tape: tuple[TapeCopyRecord, ...] = ()
    reco: tuple[RecoOutputRecord, ...] = ()
    quality: tuple[QualityRecord, ...] = ()
    failures: tuple[FailureRecord, ...] = field(default=())

    @property
    def raw_state(self) -> str | None:
        return self.raw.state if self.raw else None

    @property
    def tape_state(self) -> str | None:
        """ "ok" only when every tape copy is ok; the worst state otherwise."""
        if not self.tape:
            return None
        for state in ("mismatch", "missing"):
            if any(copy.state == state for copy in self.tape):
                return state
        return "ok"

    @property
    def reco_versions(self) -> tuple[str, ...]:
        return tuple(r.reco_version for r in self.reco if r.state == "done")

    @property
    def abandoned(self) -> bool:
        return any(f.abandoned for f in self.failures)

    def quality_flag(self, reco_version: str | None = None) -> str | None:
        """Flag for ``reco_version``, or of the most recently updated report."""
        reports = [q for q in self.quality if reco_version in (None, q.reco_version)]
        if not reports:
            return None
        return max(reports, key=lambda q: q.updated_at).flag
