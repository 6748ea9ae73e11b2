"""The library objects every task uses, built from this process's settings.

Tasks run on the flow host; only ``reconstruct_chunk``'s function travels to a job,
where :func:`store` rebuilds the store from the job's environment. How settings become
objects is decided once, in :mod:`cygno.resources`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cygno import resources
from cygno.settings import Settings, get_settings

if TYPE_CHECKING:
    from cygno.storage.catalog import Catalog
    from cygno.storage.daqdb import DaqLogbook
    from cygno.storage.objectstore import ObjectStore
    from cygno.storage.tape import TapeEndpoint


def settings() -> Settings:
    return get_settings()


def store() -> ObjectStore:
    return resources.store_for(get_settings())


def catalog() -> Catalog:
    return resources.catalog_for(get_settings())


def logbook() -> DaqLogbook:
    return resources.logbook_for(get_settings())


def tape() -> TapeEndpoint:
    return resources.tape_for(get_settings())
