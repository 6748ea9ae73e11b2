"""The mirror of the DAQ logbook (``Runlog``) inside the catalog."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from cygno.storage.catalog import models as m
from cygno.storage.catalog.database import Database
from cygno.storage.catalog.runlog import RUNLOG_COLUMN_NAMES, row_hash
from cygno.storage.catalog.sql import utcnow


class LogbookMirror(Database):
    """Mirrored logbook rows, written only when their content hash changes."""

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
