"""Quality reports: one verdict per reconstructed run and reco version."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from cygno.storage.catalog import models as m
from cygno.storage.catalog.database import Database, _check
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
        lineage: str | None = None,
    ) -> bool:
        """Quality verdict of one reco output; ``summary`` is stored as JSON (numpy ok);
        ``lineage`` identifies the reco output and thresholds it was judged with."""
        _check(flag, m.QUALITY_FLAGS, "quality flag")
        version = validate_version(reco_version)
        values = {
            "uri": uri,
            "flag": flag,
            "reason": reason,
            "summary": json_normalise(summary),
            "lineage": lineage,
        }
        return self._upsert_of_version(m.QualityReport, run, tag, version, values)

    def quality_report(self, run: int, tag: str, reco_version: str) -> QualityRecord | None:
        return self._row_of_version(m.QualityReport, run, tag, reco_version, self._quality_record)

    def reference_runs(self, run: int, tag: str, reco_version: str, limit: int = 5) -> list[int]:
        """Candidates for the reference of ``run``, latest first: earlier runs of the same
        tag and run type whose output of ``reco_version`` was judged "good". One indexed
        query over at most ``limit`` rows, whatever the size of the catalog."""

        def work(session: Session) -> list[int]:
            kind = session.scalar(
                sa.select(m.Run.run_type).where(m.Run.run_number == run, m.Run.tag == tag)
            )
            same_kind = m.Run.run_type.is_(None) if kind is None else m.Run.run_type == kind
            query = (
                sa.select(m.Run.run_number)
                .join(m.QualityReport, m.QualityReport.run_id == m.Run.id)
                .where(
                    m.Run.tag == tag,
                    m.Run.run_number < run,
                    same_kind,
                    m.QualityReport.reco_version == reco_version,
                    m.QualityReport.flag == "good",
                )
                .order_by(m.Run.run_number.desc())
                .limit(limit)
            )
            return list(session.scalars(query))

        return self._read(work)

    def trend_points(self, tag: str, reco_version: str) -> list[dict[str, Any]]:
        """The quality summaries of one tag and reco version in run order: the points
        of its trend plots (only those rows are read, no run's other children)."""

        def work(session: Session) -> list[dict[str, Any]]:
            query = (
                sa.select(m.QualityReport.summary)
                .join(m.Run, m.QualityReport.run_id == m.Run.id)
                .where(
                    m.Run.tag == tag,
                    m.QualityReport.reco_version == reco_version,
                    m.QualityReport.summary.is_not(None),
                )
                .order_by(m.Run.run_number)
            )
            return [summary for summary in session.scalars(query) if summary]

        return self._read(work)
