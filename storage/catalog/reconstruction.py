"""Reconstruction outputs: one per run and reco version."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from cygno.storage.catalog import models as m
from cygno.storage.catalog.database import Database, _check
from cygno.storage.catalog.records import RecoOutputRecord
from cygno.storage.keys import validate_version


class Reconstruction(Database):
    """Reco outputs and the runs still lacking one."""

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
        lineage: str | None = None,
    ) -> bool:
        """One reco output per (run, tag, reco_version), with the lineage id of what
        made it. Returns True if anything changed."""
        _check(state, m.RECO_STATES, "reco state")
        version = validate_version(reco_version)
        values = {
            "config_hash": config_hash,
            "uri": uri,
            "events": events,
            "clusters": clusters,
            "state": state,
            "lineage": lineage,
        }
        return self._upsert_of_version(m.RecoOutput, run, tag, version, values)

    def reco_output(self, run: int, tag: str, reco_version: str) -> RecoOutputRecord | None:
        return self._row_of_version(m.RecoOutput, run, tag, reco_version, self._reco_record)

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
