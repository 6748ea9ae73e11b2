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
    from cygno.storage.tape import TapeEndpoint


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


def tape() -> TapeEndpoint:
    """The tape endpoint ``CYGNO_TAPE_URL`` names: ``davs://``/``https://`` is StoRM
    WebDAV (bearer token, Tape REST recalls), anything else the local HSM emulator."""
    s = get_settings()
    if s.tape_url.split("://", 1)[0] not in ("davs", "dav", "https", "http"):
        from cygno.storage.tape import LocalHsm

        return LocalHsm(s.tape_url, s.tape_recall_seconds, state_url=s.tape_hsm_state_url)
    return _webdav_tape(s)


def _webdav_tape(s: Settings) -> TapeEndpoint:
    import ssl
    from pathlib import Path

    from cygno.storage.tape import BearerToken, WebDavTape

    if s.tape_token_file is not None:
        token = BearerToken(path=s.tape_token_file)
    elif s.tape_token is not None:
        token = BearerToken(value=s.tape_token.get_secret_value())
    else:
        token = None  # anonymous, or a server that authenticates otherwise
    verify: bool | ssl.SSLContext = True
    if s.tape_ca_path:
        ca = Path(s.tape_ca_path)
        verify = ssl.create_default_context(
            capath=str(ca) if ca.is_dir() else None, cafile=None if ca.is_dir() else str(ca)
        )
    return WebDavTape(
        s.tape_url,
        token,
        rest_url=s.tape_rest_url,
        verify=verify,
        poll_seconds=s.tape_stage_poll_seconds,
        stage_timeout_seconds=s.tape_stage_timeout_seconds,
    )
