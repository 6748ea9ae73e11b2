"""Quality reports: one verdict per reconstructed run and reco version."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from cygno.storage.catalog import models as m
from cygno.storage.catalog.database import Database, _check, _upsert
from cygno.storage.catalog.records import QualityRecord
from cygno.storage.catalog.sql import json_normalise
from cygno.storage.keys import validate_version


class Quality(Database):
    """Quality reports of reco outputs."""

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
