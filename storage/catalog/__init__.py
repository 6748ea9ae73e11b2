"""The catalog database: runs, raw files, tape copies, reco outputs, quality, failures
and the mirrored DAQ logbook (docs/architecture.md §6). Import :class:`Catalog` from here."""

from cygno.storage.catalog.records import (
    FailureRecord,
    QualityRecord,
    RawFileRecord,
    RecoOutputRecord,
    RunRecord,
    TapeCopyRecord,
)
from cygno.storage.catalog.repository import Catalog, alembic_config

__all__ = [
    "Catalog",
    "FailureRecord",
    "QualityRecord",
    "RawFileRecord",
    "RecoOutputRecord",
    "RunRecord",
    "TapeCopyRecord",
    "alembic_config",
]
