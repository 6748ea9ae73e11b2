"""Runs and their raw files, tape copies and failures: the catalog's main aggregate."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from cygno.storage.catalog import models as m
from cygno.storage.catalog.database import Database, _check, _check_adler32, _given, _upsert
from cygno.storage.catalog.records import (
    FailureRecord,
    QualityRecord,
    RawFileRecord,
    RawFileVersionRecord,
    RecoOutputRecord,
    RunRecord,
    TapeCopyRecord,
)
from cygno.storage.catalog.sql import as_utc, utcnow
from cygno.storage.keys import validate_tag

RUN_FIELDS = ("pedestal_run", "run_type", "start_time", "stop_time", "events")
BAD_TAPE_STATES = tuple(state for state in m.TAPE_STATES if state != "ok")


class RunHasRawFile(ValueError):
    """The run already has an ingested raw file under another URI (``.mid`` beside
    ``.mid.gz``): one run, one raw file. Decided inside the write's transaction, with the
    run's row locked, so two keys of one run arriving at once end with one row."""

    def __init__(self, uri: str, run: int, tag: str, other: str) -> None:
        self.uri, self.other = uri, other
        super().__init__(
            f"{uri} is a second raw file for {tag} run {run}, which already has {other}; "
            "refused (remove or rename one of them)"
        )


class RunsAndFiles(Database):
    """Runs, raw files, tape copies and failures; :meth:`runs` reads them all at once."""

    def upsert_run(self, run: int, tag: str, **fields: Any) -> bool:
        """Create or update a run; fields: pedestal_run, run_type, start_time, stop_time,
        events. Returns True if anything changed."""
        unknown = set(fields) - set(RUN_FIELDS)
        if unknown:
            raise TypeError(f"unknown run fields {sorted(unknown)}; known: {RUN_FIELDS}")
        key = {"run_number": int(run), "tag": validate_tag(tag)}
        return self._write(lambda s: _upsert(s, m.Run, key, fields)[1])

    def upsert_raw_file(
        self,
        uri: str,
        run: int,
        tag: str,
        size: int | None = None,
        adler32: str | None = None,
        md5: str | None = None,
        events: int | None = None,
        state: str | None = None,
        *,
        pictures: int | None = None,
        reason: str | None = None,
        etag: str | None = None,
    ) -> bool:
        """Record a raw file by its URI. ``None`` arguments keep stored values (a new
        file's state defaults to "ingested"). Returns True if anything changed. Raises
        :class:`RunHasRawFile` when the file would be ingested beside another ingested
        raw file of its run."""
        _check(state, m.RAW_STATES, "raw file state")
        _check_adler32(adler32)
        values = _given(
            size=size,
            adler32=adler32,
            md5=md5,
            events=events,
            pictures=pictures,
            reason=reason,
            state=state,
            etag=etag,
        )

        def work(session: Session) -> bool:
            run_row = self._run_row(session, run, tag)  # locked: one writer per run
            stored = sa.select(m.RawFile.state).filter_by(uri=uri)
            if (state or session.scalars(stored).first() or "ingested") == "ingested":
                other = session.scalars(
                    sa.select(m.RawFile.uri)
                    .where(
                        m.RawFile.run_id == run_row.id,
                        m.RawFile.state == "ingested",
                        m.RawFile.uri != uri,
                    )
                    .with_for_update()
                ).first()
                if other is not None:
                    raise RunHasRawFile(uri, run, tag, other)
            values_with_run = {"run_id": run_row.id, **values}
            return _upsert(session, m.RawFile, {"uri": uri}, values_with_run)[1]

        return self._write(work)

    def supersede_raw_file(
        self,
        uri: str,
        kept: list[dict[str, Any]],
        *,
        size: int,
        adler32: str,
        md5: str | None,
        events: int | None,
        pictures: int | None,
        etag: str | None,
    ) -> int:
        """New content under a known raw file's URI, in one transaction: the current
        facts become a superseded version (with ``kept``: where its tape copy and
        products were moved), its tape copies and its run's reco outputs and quality
        reports leave the current records (every step runs again for the new content),
        and the new facts become the next version. Returns the new version number."""
        _check_adler32(adler32)

        def work(session: Session) -> int:
            raw = session.scalars(
                sa.select(m.RawFile).filter_by(uri=uri).with_for_update()
            ).one_or_none()
            if raw is None:
                raise LookupError(f"raw file {uri!r} is not in the catalog")
            now = utcnow()
            session.add(
                m.RawFileVersion(
                    raw_file_id=raw.id,
                    version=raw.version,
                    size=raw.size,
                    adler32=raw.adler32,
                    md5=raw.md5,
                    events=raw.events,
                    pictures=raw.pictures,
                    etag=raw.etag,
                    ingested_at=raw.updated_at,
                    superseded_at=now,
                    kept=kept,
                )
            )
            session.execute(sa.delete(m.TapeCopy).where(m.TapeCopy.raw_file_id == raw.id))
            for model in (m.RecoOutput, m.QualityReport):
                session.execute(sa.delete(model).where(model.run_id == raw.run_id))
            raw.version += 1
            raw.size, raw.adler32, raw.md5, raw.etag = size, adler32, md5, etag
            raw.events, raw.pictures = events, pictures
            raw.state, raw.reason, raw.updated_at = "ingested", None, now
            session.flush()
            return raw.version

        return self._write(work)

    def raw_file_versions(self, uri: str) -> list[RawFileVersionRecord]:
        """The superseded versions of a raw file, oldest first."""

        def work(session: Session) -> list[RawFileVersionRecord]:
            query = (
                sa.select(m.RawFileVersion, m.RawFile, m.Run)
                .join_from(m.RawFileVersion, m.RawFile)
                .join_from(m.RawFile, m.Run)
                .where(m.RawFile.uri == uri)
                .order_by(m.RawFileVersion.version)
            )
            return [
                self._record(RawFileVersionRecord, version, run, raw_uri=raw.uri)
                for version, raw, run in session.execute(query)
            ]

        return self._read(work)

    def set_raw_state(self, uri: str, state: str, reason: str | None = None) -> bool:
        """Change a known raw file's state (e.g. "deleted" once removed from S3)."""
        _check(state, m.RAW_STATES, "raw file state")

        def work(session: Session) -> bool:
            if session.scalars(sa.select(m.RawFile.id).filter_by(uri=uri)).first() is None:
                raise LookupError(f"raw file {uri!r} is not in the catalog")
            return _upsert(session, m.RawFile, {"uri": uri}, _given(state=state, reason=reason))[1]

        return self._write(work)

    # --- tape ----------------------------------------------------------------------------

    def record_tape_copy(
        self,
        raw_uri: str,
        tape_uri: str,
        adler32: str,
        size: int | None,
        verified: bool,
        when: dt.datetime | None = None,
    ) -> TapeCopyRecord:
        """Record a tape copy of a catalogued raw file.

        ``verified`` says the copy's bytes were *just* read back (or its checksum just
        computed by the endpoint) and had ``adler32``; the state is "ok" only if that
        holds *and* the adler32 equals the raw file's, else "mismatch". Each verification
        is a new fact: it stamps ``verified_at`` with ``when``; ``archived_at`` moves only
        when the copy was (re)written over a copy that was not ok. Recording the same
        facts at the same time again changes nothing.
        """
        _check_adler32(adler32)
        when = as_utc(when) or utcnow()

        def work(session: Session) -> TapeCopyRecord:
            raw = session.scalars(sa.select(m.RawFile).filter_by(uri=raw_uri)).one_or_none()
            if raw is None:
                raise LookupError(f"raw file {raw_uri!r} is not in the catalog")
            ok = verified and raw.adler32 in (None, adler32)
            state = "ok" if ok else "mismatch"
            old = session.scalars(
                sa.select(m.TapeCopy).filter_by(tape_uri=tape_uri).with_for_update()
            ).one_or_none()
            values: dict[str, Any] = {
                "raw_file_id": raw.id,
                "adler32": adler32,
                "state": state,
                **_given(size=size),
            }
            rewritten = old is None or old.adler32 != adler32 or old.state != "ok"
            if old is None or (rewritten and ok):
                values["archived_at"] = when
            if ok:
                values["verified_at"] = when
            if old is None and not ok:
                values["verified_at"] = None
            row, _ = _upsert(session, m.TapeCopy, {"tape_uri": tape_uri}, values)
            return self._tape_record(session, row)

        return self._write(work)

    def mark_tape_copy(self, tape_uri: str, state: str) -> bool:
        """Record an audit finding against a tape copy: "mismatch" or "missing". A copy
        becomes "ok" only through :meth:`record_tape_copy` with bytes just read."""
        _check(state, BAD_TAPE_STATES, "an audit finding")
        values: dict[str, Any] = {"state": state}

        def work(session: Session) -> bool:
            if (
                session.scalars(sa.select(m.TapeCopy.id).filter_by(tape_uri=tape_uri)).first()
                is None
            ):
                raise LookupError(f"tape copy {tape_uri!r} is not in the catalog")
            return _upsert(session, m.TapeCopy, {"tape_uri": tape_uri}, values)[1]

        return self._write(work)

    # --- failures --------------------------------------------------------------------

    def record_failure(
        self, run: int, tag: str, step: str, message: str, abandon_after: int | None = None
    ) -> FailureRecord:
        """Count one more failure of ``step`` for a run; with ``abandon_after`` = N the
        N-th failure marks the run abandoned (skipped until :meth:`reset`)."""
        now = utcnow()

        def work(session: Session) -> FailureRecord:
            run_row = self._run_row(session, run, tag)
            key = {"run_id": run_row.id, "step": step}
            old = session.scalars(
                sa.select(m.RunFailure).filter_by(**key).with_for_update()
            ).one_or_none()
            count = 1 if old is None else old.count + 1
            abandoned = bool(old and old.abandoned) or (
                abandon_after is not None and count >= abandon_after
            )
            values = {
                "message": message,
                "count": count,
                "abandoned": abandoned,
                "last_failed_at": now,
                "first_failed_at": now if old is None else old.first_failed_at,
            }
            row, _ = _upsert(session, m.RunFailure, key, values)
            return self._failure_record(row, run_row)

        return self._write(work)

    def abandon(self, run: int, tag: str, step: str, message: str) -> FailureRecord:
        """Mark a run abandoned for ``step`` right away (e.g. by an operator)."""
        return self.record_failure(run, tag, step, message, abandon_after=1)

    def is_abandoned(self, run: int, tag: str, step: str | None = None) -> bool:
        def work(session: Session) -> bool:
            query = (
                sa.select(sa.func.count())
                .select_from(m.RunFailure)
                .join(m.Run)
                .where(m.Run.run_number == run, m.Run.tag == tag, m.RunFailure.abandoned)
            )
            if step is not None:
                query = query.where(m.RunFailure.step == step)
            return session.scalar(query) > 0

        return self._read(work)

    def reset(self, run: int, tag: str, step: str | None = None) -> int:
        """Forget a run's failures (all steps or one): it is retried from scratch.
        Returns how many failure records were cleared."""

        def work(session: Session) -> int:
            run_row = self._find_run(session, run, tag)
            if run_row is None:
                return 0
            query = sa.delete(m.RunFailure).where(m.RunFailure.run_id == run_row.id)
            if step is not None:
                query = query.where(m.RunFailure.step == step)
            return session.execute(query).rowcount

        return self._write(work)

    def failures(self, abandoned: bool | None = None) -> list[FailureRecord]:
        def work(session: Session) -> list[FailureRecord]:
            query = sa.select(m.RunFailure, m.Run).join_from(m.RunFailure, m.Run)
            if abandoned is not None:
                query = query.where(m.RunFailure.abandoned == abandoned)
            query = query.order_by(m.Run.tag, m.Run.run_number, m.RunFailure.step)
            return [self._failure_record(f, r) for f, r in session.execute(query)]

        return self._read(work)

    def raw_file(self, uri: str) -> RawFileRecord | None:
        def work(session: Session) -> RawFileRecord | None:
            row = session.execute(
                sa.select(m.RawFile, m.Run).join_from(m.RawFile, m.Run).where(m.RawFile.uri == uri)
            ).first()
            return None if row is None else self._raw_record(*row)

        return self._read(work)

    def raw_files(self, tag: str | None = None, state: str | None = None) -> list[RawFileRecord]:
        """Catalogued raw files (the auditor's "catalog snapshot")."""

        def work(session: Session) -> list[RawFileRecord]:
            query = sa.select(m.RawFile, m.Run).join_from(m.RawFile, m.Run)
            if tag is not None:
                query = query.where(m.Run.tag == tag)
            if state is not None:
                query = query.where(m.RawFile.state == state)
            query = query.order_by(m.Run.tag, m.Run.run_number, m.RawFile.uri)
            return [self._raw_record(*row) for row in session.execute(query)]

        return self._read(work)

    def tape_copies(
        self, state: str | None = None, raw_uri: str | None = None
    ) -> list[TapeCopyRecord]:
        def work(session: Session) -> list[TapeCopyRecord]:
            query = (
                sa.select(m.TapeCopy, m.RawFile, m.Run)
                .join_from(m.TapeCopy, m.RawFile)
                .join_from(m.RawFile, m.Run)
            )
            if state is not None:
                query = query.where(m.TapeCopy.state == state)
            if raw_uri is not None:
                query = query.where(m.RawFile.uri == raw_uri)
            query = query.order_by(m.Run.tag, m.Run.run_number, m.TapeCopy.tape_uri)
            return [self._tape_record_of(*row) for row in session.execute(query)]

        return self._read(work)

    def run(self, run: int, tag: str) -> RunRecord | None:
        found = self.runs(run, run, tag)
        return found[0] if found else None

    def runs(
        self, first: int | None = None, last: int | None = None, tag: str | None = None
    ) -> list[RunRecord]:
        """Runs in ``[first, last]`` (inclusive, either open) with everything known
        about each: raw file, tape copies, reco outputs, quality, failures."""

        def work(session: Session) -> list[RunRecord]:
            where = []
            if first is not None:
                where.append(m.Run.run_number >= first)
            if last is not None:
                where.append(m.Run.run_number <= last)
            if tag is not None:
                where.append(m.Run.tag == tag)
            runs = session.scalars(
                sa.select(m.Run).where(*where).order_by(m.Run.tag, m.Run.run_number)
            ).all()
            if not runs:
                return []
            selected = sa.select(m.Run.id).where(*where)
            by_id = {run.id: run for run in runs}
            raws: dict[int, m.RawFile] = {}
            for raw in session.scalars(sa.select(m.RawFile).where(m.RawFile.run_id.in_(selected))):
                current = raws.get(raw.run_id)
                # prefer an ingested file; among equals the most recently updated
                rank = (raw.state == "ingested", raw.updated_at)
                if current is None or rank > (current.state == "ingested", current.updated_at):
                    raws[raw.run_id] = raw
            tapes: dict[int, list[TapeCopyRecord]] = {}
            for copy, raw in session.execute(
                sa.select(m.TapeCopy, m.RawFile)
                .join_from(m.TapeCopy, m.RawFile)
                .where(m.RawFile.run_id.in_(selected))
                .order_by(m.TapeCopy.tape_uri)
            ):
                if raws.get(raw.run_id) is raw:
                    record = self._tape_record_of(copy, raw, by_id[raw.run_id])
                    tapes.setdefault(raw.run_id, []).append(record)
            recos: dict[int, list[RecoOutputRecord]] = {}
            for reco in session.scalars(
                sa.select(m.RecoOutput)
                .where(m.RecoOutput.run_id.in_(selected))
                .order_by(m.RecoOutput.reco_version)
            ):
                recos.setdefault(reco.run_id, []).append(
                    self._reco_record(reco, by_id[reco.run_id])
                )
            quality: dict[int, list[QualityRecord]] = {}
            for report in session.scalars(
                sa.select(m.QualityReport)
                .where(m.QualityReport.run_id.in_(selected))
                .order_by(m.QualityReport.reco_version)
            ):
                quality.setdefault(report.run_id, []).append(
                    self._quality_record(report, by_id[report.run_id])
                )
            failures: dict[int, list[FailureRecord]] = {}
            for failure in session.scalars(
                sa.select(m.RunFailure)
                .where(m.RunFailure.run_id.in_(selected))
                .order_by(m.RunFailure.step)
            ):
                failures.setdefault(failure.run_id, []).append(
                    self._failure_record(failure, by_id[failure.run_id])
                )
            return [
                RunRecord(
                    run=run.run_number,
                    tag=run.tag,
                    pedestal_run=run.pedestal_run,
                    run_type=run.run_type,
                    start_time=run.start_time,
                    stop_time=run.stop_time,
                    events=run.events,
                    raw=self._raw_record(raws[run.id], run) if run.id in raws else None,
                    tape=tuple(tapes.get(run.id, ())),
                    reco=tuple(recos.get(run.id, ())),
                    quality=tuple(quality.get(run.id, ())),
                    failures=tuple(failures.get(run.id, ())),
                )
                for run in runs
            ]

        return self._read(work)

    def summary(self) -> dict[str, Any]:
        """Counts by table and state: what ``cygno catalog`` and ``make demo`` print."""

        def count_by(session: Session, column: sa.ColumnElement) -> dict[str, int]:
            rows = session.execute(sa.select(column, sa.func.count()).group_by(column))
            return {str(key): n for key, n in sorted(rows)}

        def work(session: Session) -> dict[str, Any]:
            abandoned = sa.select(sa.func.count(sa.distinct(m.RunFailure.run_id))).where(
                m.RunFailure.abandoned
            )
            return {
                "runs": session.scalar(sa.select(sa.func.count()).select_from(m.Run)),
                "raw_files": count_by(session, m.RawFile.state),
                "tape_copies": count_by(session, m.TapeCopy.state),
                "reco_outputs": count_by(session, m.RecoOutput.reco_version),
                "quality": count_by(session, m.QualityReport.flag),
                "abandoned_runs": session.scalar(abandoned),
                "logbook_rows": session.scalar(
                    sa.select(sa.func.count()).select_from(m.daq_logbook)
                ),
            }

        return self._read(work)
