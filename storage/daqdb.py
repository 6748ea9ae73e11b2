"""The DAQ run logbook: table ``Runlog``, one row per run, as the experiment keeps it.

In production this is the DAQ's own MySQL/MariaDB database, which we only read (the
simulator and the tests write it the way the DAQ does). Besides the experiment's
columns it has ``last_modified``, bumped on every real change, so the DB mirror can read
incrementally both by run number (new runs) and by change time (updated runs).

Reading by change time: a transaction that commits late can carry a ``last_modified``
slightly older than rows already read; re-read with a small overlap
(``changed_since(high_water - margin)``) — the catalog's upserts make overlap free.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from cygno.storage.catalog.runlog import RUNLOG_COLUMN_NAMES, runlog_columns
from cygno.storage.catalog.sql import as_utc, dispose_engine, engine_for, utcnow

#: A pedestal run needs at least this many events to give usable noise maps.
MIN_PEDESTAL_EVENTS = 100

metadata = sa.MetaData()
runlog = sa.Table("Runlog", metadata, *runlog_columns())


def _values(fields: dict[str, Any]) -> dict[str, Any]:
    unknown = set(fields) - set(RUNLOG_COLUMN_NAMES)
    if unknown:
        raise TypeError(f"Runlog has no columns {sorted(unknown)}")
    if "last_modified" in fields:
        raise TypeError("last_modified is maintained by the logbook itself")
    return fields


def _same(old: Any, new: Any) -> bool:
    if isinstance(old, dt.datetime) and isinstance(new, dt.datetime):
        return as_utc(old) == as_utc(new)
    return old == new


class DaqLogbook:
    """The ``Runlog`` table at ``url`` (defaults to ``CYGNO_DAQDB_URL``)."""

    def __init__(self, url: str | None = None) -> None:
        if url is None:
            from cygno.settings import get_settings

            url = get_settings().daqdb_url
        self.url = url
        self.engine = engine_for(url)
        self._reader = self.engine.execution_options(cygno_readonly=True)

    def __repr__(self) -> str:
        return f"DaqLogbook({sa.make_url(self.url).render_as_string(hide_password=True)!r})"

    def create_schema(self) -> None:
        """Create ``Runlog`` if missing (the simulator's and the tests' DAQ database)."""
        metadata.create_all(self.engine, checkfirst=True)

    def close(self) -> None:
        dispose_engine(self.url)

    # --- writing, as the DAQ does --------------------------------------------------------

    def insert_run(self, **row: Any) -> None:
        """A new run row (``run_number`` required); ``last_modified`` is set to now."""
        if "run_number" not in row:
            raise TypeError("insert_run needs run_number")
        values = _values(row)
        with self.engine.begin() as connection:
            connection.execute(sa.insert(runlog).values(**values, last_modified=utcnow()))

    def update_run(self, run_number: int, **fields: Any) -> bool:
        """Change some columns of a run; ``last_modified`` moves only if a value really
        changed. Returns True if it did; LookupError for an unknown run."""
        values = _values(fields)
        with self.engine.begin() as connection:
            old = connection.execute(
                sa.select(runlog).where(runlog.c.run_number == run_number).with_for_update()
            ).first()
            if old is None:
                raise LookupError(f"run {run_number} is not in the DAQ logbook")
            diff = {k: v for k, v in values.items() if not _same(old._mapping[k], v)}
            if not diff:
                return False
            connection.execute(
                sa.update(runlog)
                .where(runlog.c.run_number == run_number)
                .values(**diff, last_modified=utcnow())
            )
            return True

    # --- reading -----------------------------------------------------------------------

    def _rows(self, query: sa.Select) -> list[dict[str, Any]]:
        with self._reader.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(query)]

    def get(self, run_number: int) -> dict[str, Any] | None:
        rows = self._rows(sa.select(runlog).where(runlog.c.run_number == run_number))
        return rows[0] if rows else None

    def runs_after(self, run_number: int | None, limit: int | None = None) -> list[dict[str, Any]]:
        """Rows with a run number above ``run_number`` (all if None), in run order."""
        query = sa.select(runlog).order_by(runlog.c.run_number).limit(limit)
        if run_number is not None:
            query = query.where(runlog.c.run_number > run_number)
        return self._rows(query)

    def changed_since(
        self, timestamp: dt.datetime | None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Rows modified after ``timestamp`` (all if None), oldest change first."""
        query = sa.select(runlog).order_by(runlog.c.last_modified, runlog.c.run_number)
        if timestamp is not None:
            query = query.where(runlog.c.last_modified > as_utc(timestamp))
        return self._rows(query.limit(limit))

    def last_run_number(self) -> int | None:
        """The highest run number logged (None for an empty logbook)."""
        with self._reader.connect() as connection:
            return connection.scalar(sa.select(sa.func.max(runlog.c.run_number)))

    def pedestal_for(self, run_number: int) -> int | None:
        """The pedestal run serving ``run_number`` (RECONSTRUCTION.md): the most recent
        run ≤ it with pedestal_run == 1, HV_STATE == 0 and ≥ 100 events."""
        query = sa.select(sa.func.max(runlog.c.run_number)).where(
            runlog.c.run_number <= run_number,
            runlog.c.pedestal_run == 1,
            runlog.c.HV_STATE == 0,
            runlog.c.number_of_events >= MIN_PEDESTAL_EVENTS,
        )
        with self._reader.connect() as connection:
            return connection.scalar(query)
