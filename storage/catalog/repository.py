"""The catalog: what the platform knows about every run, behind idempotent upserts.

One class, :class:`Catalog`, assembled from one part per aggregate so each stays small:
runs with their raw files, tape copies and failures (:mod:`.runs`), reconstruction
outputs (:mod:`.reconstruction`), quality reports (:mod:`.quality`) and the DAQ logbook
mirror (:mod:`.logbook`), all on the shared engine and transactions of :mod:`.database`.

Every write is "select by natural key, insert or update only what differs" inside one
transaction, protected by the unique constraints of :mod:`.models`: when two writers
race to insert the same key, the loser gets an IntegrityError, rolls back and retries,
and on the retry finds the row and updates it. The same code runs on SQLite, MariaDB
and PostgreSQL (no dialect-specific ON CONFLICT), and writing the same values twice
touches nothing, not even ``updated_at``.
"""

from __future__ import annotations

from cygno.storage.catalog.database import alembic_config
from cygno.storage.catalog.logbook import LogbookMirror
from cygno.storage.catalog.quality import Quality
from cygno.storage.catalog.reconstruction import Reconstruction
from cygno.storage.catalog.runs import RunsAndFiles

__all__ = ["Catalog", "alembic_config"]


class Catalog(RunsAndFiles, Reconstruction, Quality, LogbookMirror):
    """The catalog database at ``url`` (SQLite, MariaDB or PostgreSQL).

    The schema is created or upgraded by Alembic on first use in each process
    (``upgrade=False`` skips that, e.g. for read-only tools against production).
    """
