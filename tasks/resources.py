"""The library objects every task uses, built from this process's settings.

Tasks run on the flow host; only ``reconstruct_chunk``'s function travels to a job,
where :func:`store` rebuilds the store from the job's environment. How settings become
objects is decided once, in :mod:`cygno.resources`.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from cygno import resources
from cygno.settings import Settings, get_settings

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient

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


def prefect_client() -> AbstractContextManager[SyncPrefectClient]:
    """A Prefect client whose requests are bounded by the settings, never the engine's."""
    return resources.prefect_client(get_settings())


def post_events(events: list[dict[str, Any]]) -> None:
    """Deliver Prefect events now, or raise naming the API's URL."""
    resources.post_events(get_settings(), events)
