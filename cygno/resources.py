"""The one place that turns settings into the library objects: store, catalog, logbook, tape.

``storage/`` and ``reco/`` never read settings or the environment; they take URLs and
options as arguments. Everything that runs the platform (tasks, the plot server, the
command line, the demo) builds them here from a :class:`~cygno.settings.Settings`.
Catalog, logbook and tape are imported on first use so a reconstruction job never pays
for them; catalog and logbook are cached per URL, so a process checks the schema once.
"""

from __future__ import annotations

import ssl
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from cygno.settings import Settings
from cygno.storage.objectstore import ObjectStore

if TYPE_CHECKING:
    from cygno.storage.catalog import Catalog
    from cygno.storage.daqdb import DaqLogbook
    from cygno.storage.tape import TapeEndpoint

_WEBDAV_SCHEMES = ("davs", "dav", "https", "http")


def store_for(settings: Settings) -> ObjectStore:
    """The object store ``CYGNO_STORE_URL`` names, with the S3 endpoint and credentials."""
    return ObjectStore(settings.store_url, settings.storage_options())


@lru_cache(maxsize=8)
def _catalog(url: str) -> Catalog:
    from cygno.storage.catalog import Catalog

    return Catalog(url)  # creates or upgrades the schema once per process


def catalog_for(settings: Settings) -> Catalog:
    return _catalog(settings.catalog_url)


@lru_cache(maxsize=8)
def _logbook(url: str) -> DaqLogbook:
    from cygno.storage.daqdb import DaqLogbook

    return DaqLogbook(url)


def logbook_for(settings: Settings) -> DaqLogbook:
    return _logbook(settings.daqdb_url)


def tape_for(settings: Settings) -> TapeEndpoint:
    """The tape endpoint ``CYGNO_TAPE_URL`` names: ``davs://``/``https://`` is StoRM
    WebDAV (bearer token, Tape REST recalls), anything else the local HSM emulator."""
    if settings.tape_url.split("://", 1)[0] not in _WEBDAV_SCHEMES:
        from cygno.storage.tape import LocalHsm

        return LocalHsm(
            settings.tape_url,
            settings.tape_recall_seconds,
            state_url=settings.tape_hsm_state_url,
        )
    token = settings.tape_token.get_secret_value() if settings.tape_token else None
    return _webdav_tape(
        settings.tape_url,
        settings.tape_token_file,
        token,
        settings.tape_rest_url,
        settings.tape_ca_path,
        settings.tape_stage_poll_seconds,
        settings.tape_stage_timeout_seconds,
    )


@lru_cache(maxsize=4)
def _webdav_tape(
    url: str,
    token_file: Path | None,
    token_value: str | None,
    rest_url: str | None,
    ca_path: str | None,
    poll_seconds: float,
    stage_timeout_seconds: float,
) -> TapeEndpoint:
    """One endpoint per configuration and process: its HTTP connections and its token
    (renewed in place) serve every task instead of a new client per call."""
    from cygno.storage.tape import BearerToken, WebDavTape

    if token_file is not None:
        token = BearerToken(path=token_file)
    elif token_value is not None:
        token = BearerToken(value=token_value)
    else:
        token = None  # anonymous, or a server that authenticates otherwise
    verify: bool | ssl.SSLContext = True
    if ca_path:
        ca = Path(ca_path)
        verify = ssl.create_default_context(
            capath=str(ca) if ca.is_dir() else None, cafile=None if ca.is_dir() else str(ca)
        )
    return WebDavTape(
        url,
        token,
        rest_url=rest_url,
        verify=verify,
        poll_seconds=poll_seconds,
        stage_timeout_seconds=stage_timeout_seconds,
    )
