"""The catalog: what the platform knows about every run, behind idempotent upserts.

Every write is "select by natural key, insert or update only what differs" inside one
transaction, protected by the unique constraints of :mod:`.models`: when two writers
race to insert the same key, the loser gets an IntegrityError, rolls back and retries,
and on the retry finds the row and updates it. The same code runs on SQLite, MariaDB
and PostgreSQL (no dialect-specific ON CONFLICT), and writing the same values twice
touches nothing, not even ``updated_at``.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from cygno.storage.catalog import models as m
from cygno.storage.catalog.records import (
    FailureRecord,
    QualityRecord,
    RawFileRecord,
    RecoOutputRecord,
    RunRecord,
    TapeCopyRecord,
)
from cygno.storage.catalog.runlog import RUNLOG_COLUMN_NAMES, row_hash
from cygno.storage.catalog.sql import as_utc, dispose_engine, engine_for, json_normalise, utcnow
from cygno.storage.keys import validate_tag, validate_version

if TYPE_CHECKING:
    from alembic.config import Config

T = TypeVar("T")
R = TypeVar("R")

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
RUN_FIELDS = ("pedestal_run", "run_type", "start_time", "stop_time", "events")
BAD_TAPE_STATES = tuple(state for state in m.TAPE_STATES if state != "ok")
_ADLER32 = re.compile(r"[0-9a-f]{8}")
_RETRIES = 6
_UPGRADED: set[str] = set()
_UPGRADE_LOCK = threading.Lock()


def alembic_config() -> Config:
    """Alembic configuration pointing at the packaged migrations (no ini, no CWD)."""
    from alembic.config import Config  # imported on demand: alembic takes ~0.5 s to import

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def _retryable(error: DBAPIError) -> bool:
    if isinstance(error, IntegrityError):
        return True  # lost an insert race: the retry will find the row
    text = str(error.orig).lower()
    return any(
        word in text
        for word in ("deadlock", "database is locked", "lock wait timeout", "could not serialize")
    )


def _same(old: Any, new: Any) -> bool:
    if isinstance(new, dt.datetime) and isinstance(old, dt.datetime):
        return as_utc(old) == as_utc(new)
    return old == new


def _check(value: str | None, allowed: tuple[str, ...], what: str) -> None:
    if value is not None and value not in allowed:
        raise ValueError(f"{what} must be one of {allowed}, got {value!r}")


def _check_adler32(value: str | None) -> None:
    if value is not None and not _ADLER32.fullmatch(value):
        raise ValueError(f"adler32 must be 8 lower-case hex digits, got {value!r}")


def _upsert(
    session: Session, model: type[T], key: Mapping[str, Any], values: Mapping[str, Any]
) -> tuple[T, bool]:
    """Insert ``key + values`` or update the differing ``values``; True if anything changed."""
    row = session.scalars(sa.select(model).filter_by(**key).with_for_update()).one_or_none()
    now = utcnow()
    if row is None:
        row = model(**key, **values, created_at=now, updated_at=now)
        session.add(row)
        session.flush()
        return row, True
    changed = False
    for name, value in values.items():
        if not _same(getattr(row, name), value):
            setattr(row, name, value)
            changed = True
    if changed:
        row.updated_at = now
        session.flush()
    return row, changed


def _given(**values: Any) -> dict[str, Any]:
    """Only the arguments actually given: ``None`` means "keep what is stored"."""
    return {name: value for name, value in values.items() if value is not None}


class Catalog:
    """The catalog database at ``url`` (SQLite, MariaDB or PostgreSQL).

    The schema is created or upgraded by Alembic on first use in each process
    (``upgrade=False`` skips that, e.g. for read-only tools against production).
    """

    def __init__(self, url: str, *, upgrade: bool = True) -> None:
        self.url = url
        self.engine = engine_for(url)
        self._reader = self.engine.execution_options(cygno_readonly=True)
        if upgrade:
            self.upgrade()

    def __repr__(self) -> str:
        return f"Catalog({sa.make_url(self.url).render_as_string(hide_password=True)!r})"

    # --- schema ------------------------------------------------------------------------

    def upgrade(self, revision: str = "head") -> None:
        """Bring the schema to ``revision``; safe when several processes race to do it."""
        from alembic import command

        with _UPGRADE_LOCK:
            if revision == "head" and self.url in _UPGRADED:
                return
            config = alembic_config()
            for attempt in range(_RETRIES):
                try:
                    with self.engine.begin() as connection:
                        config.attributes["connection"] = connection
                        command.upgrade(config, revision)
                    break
                except DBAPIError:
                    # another process may have created the tables meanwhile: fine at head
                    if revision == "head" and self.revision() == self.head_revision():
                        break
                    if attempt == _RETRIES - 1:
                        raise
                    time.sleep(0.2 * (attempt + 1))
            if revision == "head":
                _UPGRADED.add(self.url)

    def revision(self) -> str | None:
        """The schema revision the database is at (None before the first upgrade)."""
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    @staticmethod
    def head_revision() -> str | None:
        from alembic.script import ScriptDirectory

        return ScriptDirectory.from_config(alembic_config()).get_current_head()

    def close(self) -> None:
        """Release pooled connections (before dropping a test database, at exit)."""
        dispose_engine(self.url)
        _UPGRADED.discard(self.url)

    # --- transactions ------------------------------------------------------------------

    def _write(self, work: Callable[[Session], T]) -> T:
        for attempt in range(_RETRIES):
            try:
                with Session(self.engine, expire_on_commit=False) as session, session.begin():
                    return work(session)
            except DBAPIError as error:
                if attempt == _RETRIES - 1 or not _retryable(error):
                    raise
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")

    def _read(self, work: Callable[[Session], T]) -> T:
        with Session(self._reader) as session, session.begin():
            return work(session)

    @staticmethod
    def _run_row(session: Session, run: int, tag: str) -> m.Run:
        row, _ = _upsert(session, m.Run, {"run_number": int(run), "tag": validate_tag(tag)}, {})
        return row

    @staticmethod
    def _find_run(session: Session, run: int, tag: str) -> m.Run | None:
        return session.scalars(sa.select(m.Run).filter_by(run_number=run, tag=tag)).one_or_none()

    # --- runs and raw files --------------------------------------------------------------

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
    ) -> bool:
        """Record a raw file by its URI. ``None`` arguments keep stored values (a new
        file's state defaults to "ingested"). Returns True if anything changed."""
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
        )

        def work(session: Session) -> bool:
            run_row = self._run_row(session, run, tag)
            values_with_run = {"run_id": run_row.id, **values}
            return _upsert(session, m.RawFile, {"uri": uri}, values_with_run)[1]

        return self._write(work)

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

    # --- reconstruction and quality ---------------------------------------------------

    def upsert_reco_output(
        self,
        run: int,
        tag: str,
        reco_version: str,
        config_hash: str | None,
        uri: str | None,
        events: int | None,
        clusters: int | None,
        state: str = "done",
    ) -> bool:
        """One reco output per (run, tag, reco_version). Returns True if anything changed."""
        _check(state, m.RECO_STATES, "reco state")
        version = validate_version(reco_version)
        values = {
            "config_hash": config_hash,
            "uri": uri,
            "events": events,
            "clusters": clusters,
            "state": state,
        }

        def work(session: Session) -> bool:
            run_row = self._run_row(session, run, tag)
            key = {"run_id": run_row.id, "reco_version": version}
            return _upsert(session, m.RecoOutput, key, values)[1]

        return self._write(work)

    def upsert_quality_report(
        self,
        run: int,
        tag: str,
        reco_version: str,
        uri: str | None,
        flag: str,
        summary: Mapping[str, Any],
        reason: str | None = None,
    ) -> bool:
        """Quality verdict of one reco output; ``summary`` is stored as JSON (numpy ok)."""
        _check(flag, m.QUALITY_FLAGS, "quality flag")
        version = validate_version(reco_version)
        values = {"uri": uri, "flag": flag, "reason": reason, "summary": json_normalise(summary)}

        def work(session: Session) -> bool:
            run_row = self._run_row(session, run, tag)
            key = {"run_id": run_row.id, "reco_version": version}
            return _upsert(session, m.QualityReport, key, values)[1]

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

    # --- DAQ logbook mirror ------------------------------------------------------------

    def upsert_logbook(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Mirror DAQ logbook rows (keyed by ``run_number``; columns the mirror does not
        know are ignored). A row is written only when its content hash differs from the
        mirrored one. Returns how many rows were inserted or changed."""
        prepared: dict[int, dict[str, Any]] = {}
        for row in rows:
            values = {k: v for k, v in row.items() if k in RUNLOG_COLUMN_NAMES}
            if "run_number" not in values:
                raise ValueError("logbook row without run_number")
            values["run_number"] = int(values["run_number"])
            values["row_hash"] = row_hash(values)
            prepared[values["run_number"]] = values
        if not prepared:
            return 0
        table = m.daq_logbook

        def work(session: Session) -> int:
            changed = 0
            numbers = sorted(prepared)
            for start in range(0, len(numbers), 500):
                batch = numbers[start : start + 500]
                mirrored = dict(
                    session.execute(
                        sa.select(table.c.run_number, table.c.row_hash)
                        .where(table.c.run_number.in_(batch))
                        .with_for_update()
                    ).all()
                )
                now = utcnow()
                inserts = []
                for number in batch:
                    new = prepared[number]
                    if number not in mirrored:
                        inserts.append({**new, "mirrored_at": now})
                    elif mirrored[number] != new["row_hash"]:
                        full = {name: new.get(name) for name in RUNLOG_COLUMN_NAMES}
                        session.execute(
                            sa.update(table)
                            .where(table.c.run_number == number)
                            .values(**full, row_hash=new["row_hash"], mirrored_at=now)
                        )
                        changed += 1
                if inserts:
                    session.execute(sa.insert(table), inserts)
                    changed += len(inserts)
            return changed

        return self._write(work)

    def logbook(self, run_number: int) -> dict[str, Any] | None:
        """The mirrored logbook row of a run, as a dict (None if not mirrored)."""
        table = m.daq_logbook

        def work(session: Session) -> dict[str, Any] | None:
            row = session.execute(sa.select(table).where(table.c.run_number == run_number)).first()
            return None if row is None else dict(row._mapping)

        return self._read(work)

    def logbook_progress(self) -> tuple[int | None, list[int]]:
        """(highest run number mirrored, run numbers mirrored while still open — no
        ``stop_time`` yet): where the next incremental pass of the mirror looks."""
        table = m.daq_logbook

        def work(session: Session) -> tuple[int | None, list[int]]:
            last = session.scalar(sa.select(sa.func.max(table.c.run_number)))
            open_runs = session.scalars(
                sa.select(table.c.run_number)
                .where(table.c.stop_time.is_(None))
                .order_by(table.c.run_number)
            ).all()
            return last, list(open_runs)

        return self._read(work)

    def _record(record_type: type[R], row: Any, run: m.Run, **known: Any) -> R:
        """A frozen record from an ORM row: run number and tag from its run, the other
        fields by name from the row (or ``known``)."""
        names = {f.name for f in fields(record_type)} - {"run", "tag"} - known.keys()
        values = {name: getattr(row, name) for name in names}
        return record_type(run=run.run_number, tag=run.tag, **known, **values)

    @staticmethod
    def _raw_record(raw: m.RawFile, run: m.Run) -> RawFileRecord:
        return Catalog._record(RawFileRecord, raw, run)

    @staticmethod
    def _tape_record(session: Session, copy: m.TapeCopy) -> TapeCopyRecord:
        raw, run = session.execute(
            sa.select(m.RawFile, m.Run)
            .join_from(m.RawFile, m.Run)
            .where(m.RawFile.id == copy.raw_file_id)
        ).one()
        return Catalog._tape_record_of(copy, raw, run)

    @staticmethod
    def _tape_record_of(copy: m.TapeCopy, raw: m.RawFile, run: m.Run) -> TapeCopyRecord:
        return Catalog._record(TapeCopyRecord, copy, run, raw_uri=raw.uri)

    @staticmethod
    def _reco_record(reco: m.RecoOutput, run: m.Run) -> RecoOutputRecord:
        return Catalog._record(RecoOutputRecord, reco, run)

    @staticmethod
    def _quality_record(report: m.QualityReport, run: m.Run) -> QualityRecord:
        return Catalog._record(QualityRecord, report, run)

    @staticmethod
    def _failure_record(failure: m.RunFailure, run: m.Run) -> FailureRecord:
        return Catalog._record(FailureRecord, failure, run)

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

    def reco_output(self, run: int, tag: str, reco_version: str) -> RecoOutputRecord | None:
        def work(session: Session) -> RecoOutputRecord | None:
            row = session.execute(
                sa.select(m.RecoOutput, m.Run)
                .join_from(m.RecoOutput, m.Run)
                .where(
                    m.Run.run_number == run,
                    m.Run.tag == tag,
                    m.RecoOutput.reco_version == reco_version,
                )
            ).first()
            return None if row is None else self._reco_record(*row)

        return self._read(work)

    def quality_report(self, run: int, tag: str, reco_version: str) -> QualityRecord | None:
        def work(session: Session) -> QualityRecord | None:
            row = session.execute(
                sa.select(m.QualityReport, m.Run)
                .join_from(m.QualityReport, m.Run)
                .where(
                    m.Run.run_number == run,
                    m.Run.tag == tag,
                    m.QualityReport.reco_version == reco_version,
                )
            ).first()
            return None if row is None else self._quality_record(*row)

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

    def runs_lacking(
        self,
        reco_version: str,
        tag: str,
        first: int | None = None,
        last: int | None = None,
        include_abandoned: bool = False,
    ) -> list[int]:
        """Run numbers with an ingested raw file but no finished output of
        ``reco_version``; abandoned runs are left out unless asked for."""

        def work(session: Session) -> list[int]:
            done = sa.select(m.RecoOutput.run_id).where(
                m.RecoOutput.reco_version == reco_version, m.RecoOutput.state == "done"
            )
            ingested = sa.select(m.RawFile.run_id).where(m.RawFile.state == "ingested")
            query = sa.select(m.Run.run_number).where(
                m.Run.tag == tag, m.Run.id.in_(ingested), m.Run.id.not_in(done)
            )
            if not include_abandoned:
                abandoned = sa.select(m.RunFailure.run_id).where(m.RunFailure.abandoned)
                query = query.where(m.Run.id.not_in(abandoned))
            if first is not None:
                query = query.where(m.Run.run_number >= first)
            if last is not None:
                query = query.where(m.Run.run_number <= last)
            return list(session.scalars(query.order_by(m.Run.run_number)))

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
