"""The library objects every task uses, built from the settings in this process.

Tasks run on the flow host; only ``reconstruct_chunk``'s function travels to a job,
where :func:`store` rebuilds the store from the job's environment. Catalog, logbook and
tape are imported on first use so a job never pays for them, and catalog and logbook
are cached per URL, so a process pays for the schema check once.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from cygno.htcondor_runner.payload import storage_options_from_env
from cygno.settings import Settings, get_settings
from cygno.storage.objectstore import ObjectStore

if TYPE_CHECKING:
    from cygno.storage.catalog import Catalog
    from cygno.storage.daqdb import DaqLogbook
    from cygno.storage.tape import TapeArchive


def settings() -> Settings:
    return get_settings()


def store() -> ObjectStore:
    """The object store; in a pool job, with the options the runner forwarded for
    staging (the same store) under the ones the job's own settings give."""
    s = get_settings()
    options = {**storage_options_from_env(), **s.storage_options()}
    return ObjectStore(s.store_url, options)


@lru_cache(maxsize=8)
def _catalog(url: str) -> Catalog:
    from cygno.storage.catalog import Catalog

    return Catalog(url)  # creates or upgrades the schema once per process


def catalog() -> Catalog:
    return _catalog(get_settings().catalog_url)


@lru_cache(maxsize=8)
def _logbook(url: str) -> DaqLogbook:
    from cygno.storage.daqdb import DaqLogbook

    return DaqLogbook(url)


def logbook() -> DaqLogbook:
    return _logbook(get_settings().daqdb_url)


def tape() -> TapeArchive:
    from cygno.storage.tape import TapeArchive

    s = get_settings()
    return TapeArchive(s.tape_url, s.tape_recall_seconds)
