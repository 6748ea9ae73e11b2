"""The catalog's database: engine, schema upgrades, transactions, the idempotent upsert.

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
from collections.abc import Callable, Mapping
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
    TapeCopyRecord,
)
from cygno.storage.catalog.sql import as_utc, dispose_engine, engine_for, utcnow
from cygno.storage.keys import validate_tag

if TYPE_CHECKING:
    from alembic.config import Config

T = TypeVar("T")
R = TypeVar("R")

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
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


class Database:
    """The connection, schema and transactions every part of the catalog shares."""

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

    def _upsert_of_version(
        self, model: type, run: int, tag: str, reco_version: str, values: Mapping[str, Any]
    ) -> bool:
        """Insert or update ``model``'s row of (run, reco version): the products made once
        per reconstruction version (outputs, quality reports). True if anything changed."""

        def work(session: Session) -> bool:
            key = {"run_id": self._run_row(session, run, tag).id, "reco_version": reco_version}
            return _upsert(session, model, key, values)[1]

        return self._write(work)

    def _row_of_version(
        self, model: type, run: int, tag: str, reco_version: str, to_record: Callable[..., R]
    ) -> R | None:
        """``model``'s row of (run, reco version) as a record, or None."""

        def work(session: Session) -> R | None:
            row = session.execute(
                sa.select(model, m.Run)
                .join_from(model, m.Run)
                .where(
                    m.Run.run_number == run,
                    m.Run.tag == tag,
                    model.reco_version == reco_version,
                )
            ).first()
            return None if row is None else to_record(*row)

        return self._read(work)

    @staticmethod
    def _find_run(session: Session, run: int, tag: str) -> m.Run | None:
        return session.scalars(sa.select(m.Run).filter_by(run_number=run, tag=tag)).one_or_none()

    @staticmethod
    def _record(record_type: type[R], row: Any, run: m.Run, **known: Any) -> R:
        """A frozen record from an ORM row: run number and tag from its run, the other
        fields by name from the row (or ``known``)."""
        names = {f.name for f in fields(record_type)} - {"run", "tag"} - known.keys()
        values = {name: getattr(row, name) for name in names}
        return record_type(run=run.run_number, tag=run.tag, **known, **values)

    @staticmethod
    def _raw_record(raw: m.RawFile, run: m.Run) -> RawFileRecord:
        return Database._record(RawFileRecord, raw, run)

    @staticmethod
    def _tape_record(session: Session, copy: m.TapeCopy) -> TapeCopyRecord:
        raw, run = session.execute(
            sa.select(m.RawFile, m.Run)
            .join_from(m.RawFile, m.Run)
            .where(m.RawFile.id == copy.raw_file_id)
        ).one()
        return Database._tape_record_of(copy, raw, run)

    @staticmethod
    def _tape_record_of(copy: m.TapeCopy, raw: m.RawFile, run: m.Run) -> TapeCopyRecord:
        return Database._record(TapeCopyRecord, copy, run, raw_uri=raw.uri)

    @staticmethod
    def _reco_record(reco: m.RecoOutput, run: m.Run) -> RecoOutputRecord:
        return Database._record(RecoOutputRecord, reco, run)

    @staticmethod
    def _quality_record(report: m.QualityReport, run: m.Run) -> QualityRecord:
        return Database._record(QualityRecord, report, run)

    @staticmethod
    def _failure_record(failure: m.RunFailure, run: m.Run) -> FailureRecord:
        return Database._record(FailureRecord, failure, run)
