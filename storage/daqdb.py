"""The DAQ run logbook: table ``Runlog``, one row per run, as the experiment keeps it.

In production this is the DAQ's own MySQL/MariaDB database (MIDAS mlogger's SQL
runlog), which we only read; the simulator and the tests write it the way the DAQ does:

- begin of run: mlogger inserts the row with its begin-of-run columns (``stop_time``
  and ``number_of_events`` still NULL: the run is *open*);
- end of run: mlogger updates ``stop_time``, ``number_of_events``,
  ``storage_local_status``;
- afterwards, one column per UPDATE, whenever they get to it: the uploader
  (``file_checksum``, ``file_size``, ``file_s3_tag``, ``storage_cloud_status``), the tape
  job (``storage_tape_status``, days later) and the online reconstruction
  (``online_reco_status``).

There is no change-time column, so readers cannot ask "what changed since": the DB
mirror re-reads open and recent runs and compares row content (see ``tasks/mirror.py``).
Some columns the DAQ writes are not mirrored (:data:`DAQ_ONLY_COLUMNS`). mlogger adds a
column when its configuration gains a link, so the set differs between setups: reads
use the columns the database's ``Runlog`` really has (reflected once), and a column
the mirror knows but the DAQ does not write simply stays NULL.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import sqlalchemy as sa

from cygno.storage.catalog.runlog import runlog_columns
from cygno.storage.catalog.sql import dispose_engine, engine_for

#: A pedestal run needs at least this many events to give usable noise maps.
MIN_PEDESTAL_EVENTS = 100


def _daq_only_columns() -> list[sa.Column]:
    """Begin-of-run columns of LNGS's mlogger configuration that the catalog ignores."""
    return [
        *(sa.Column(name, sa.Double) for name in ("OFFSET_V", "PMT1_V", "PMT2_V", "PMT3_V")),
        sa.Column("PMT4_V", sa.Double),
        sa.Column("total_gas_flow", sa.Double),
        sa.Column("sequence_filename", sa.String(256)),
        sa.Column("trigger_logic", sa.String(64)),
    ]


DAQ_ONLY_COLUMNS = tuple(column.name for column in _daq_only_columns())

metadata = sa.MetaData()
runlog = sa.Table("Runlog", metadata, *runlog_columns(), *_daq_only_columns())


def _values(fields: dict[str, Any]) -> dict[str, Any]:
    unknown = set(fields) - set(runlog.c.keys())
    if unknown:
        raise TypeError(f"Runlog has no columns {sorted(unknown)}")
    return fields


class DaqLogbook:
    """The ``Runlog`` table of the DAQ database at ``url``."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = engine_for(url)
        self._reader = self.engine.execution_options(cygno_readonly=True)
        self._found: sa.Table | None = None

    @property
    def table(self) -> sa.Table:
        """``Runlog`` as the database has it (reflected on first use; our definition
        while the table does not exist yet)."""
        if self._found is None:
            try:
                found = sa.Table("Runlog", sa.MetaData(), autoload_with=self.engine)
            except sa.exc.NoSuchTableError:
                return runlog
            for column in found.columns:  # values as the definition's types give them
                if isinstance(column.type, sa.DateTime):
                    column.type = runlog.c.start_time.type  # aware UTC
                elif isinstance(column.type, sa.Float):
                    column.type = sa.Double()  # float, not MariaDB's reflected Decimal
            self._found = found
        return self._found

    def __repr__(self) -> str:
        return f"DaqLogbook({sa.make_url(self.url).render_as_string(hide_password=True)!r})"

    def create_schema(self) -> None:
        """Create ``Runlog`` if missing (the simulator's and the tests' DAQ database)."""
        metadata.create_all(self.engine, checkfirst=True)

    def close(self) -> None:
        dispose_engine(self.url)

    # --- writing, as the DAQ does --------------------------------------------------------

    def insert_run(self, **row: Any) -> None:
        """A new run row at begin of run (``run_number`` required)."""
        if "run_number" not in row:
            raise TypeError("insert_run needs run_number")
        with self.engine.begin() as connection:
            connection.execute(sa.insert(runlog).values(**_values(row)))

    def update_run(self, run_number: int, **fields: Any) -> None:
        """Set some columns of a run (LookupError for a run that is not logged)."""
        with self.engine.begin() as connection:
            result = connection.execute(
                sa.update(runlog).where(runlog.c.run_number == run_number).values(**_values(fields))
            )
            if result.rowcount == 0:
                raise LookupError(f"run {run_number} is not in the DAQ logbook")

    # --- reading -----------------------------------------------------------------------

    def _rows(self, query: sa.Select) -> list[dict[str, Any]]:
        with self._reader.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(query)]

    def get(self, run_number: int) -> dict[str, Any] | None:
        table = self.table
        rows = self._rows(sa.select(table).where(table.c.run_number == run_number))
        return rows[0] if rows else None

    def rows(self, after: int | None = None, runs: Iterable[int] = ()) -> list[dict[str, Any]]:
        """Rows with a run number above ``after`` (all if None) and the rows of ``runs``,
        in run order: the mirror's recent window plus the runs it saw open."""
        table = self.table
        query = sa.select(table).order_by(table.c.run_number)
        if after is not None:
            wanted = sorted(set(runs))
            above = table.c.run_number > after
            query = query.where(sa.or_(above, table.c.run_number.in_(wanted)) if wanted else above)
        return self._rows(query)

    def batches(self, size: int = 1000) -> Iterator[list[dict[str, Any]]]:
        """Every row, ``size`` at a time in run order (keyset paging: no long transaction
        on the DAQ's database, no OFFSET scans)."""
        table = self.table
        last: int | None = None
        while True:
            query = sa.select(table).order_by(table.c.run_number).limit(size)
            if last is not None:
                query = query.where(table.c.run_number > last)
            batch = self._rows(query)
            if not batch:
                return
            yield batch
            last = batch[-1]["run_number"]

    def last_run_number(self) -> int | None:
        """The highest run number logged (None for an empty logbook)."""
        table = self.table
        with self._reader.connect() as connection:
            return connection.scalar(sa.select(sa.func.max(table.c.run_number)))

    def pedestal_for(self, run_number: int) -> int | None:
        """The pedestal run serving ``run_number`` (docs/reconstruction.md): the most recent
        run ≤ it with pedestal_run == 1, HV_STATE == 0 and ≥ 100 events."""
        table = self.table
        query = sa.select(sa.func.max(table.c.run_number)).where(
            table.c.run_number <= run_number,
            table.c.pedestal_run == 1,
            table.c.HV_STATE == 0,
            table.c.number_of_events >= MIN_PEDESTAL_EVENTS,
        )
        with self._reader.connect() as connection:
            return connection.scalar(query)
