"""The one place that turns settings into the library objects: store, catalog, logbook,
tape, and the bounds of every call to the Prefect API.

``storage/`` and ``reco/`` never read settings or the environment; they take URLs and
options as arguments. Everything that runs the platform (tasks, the plot server, the
command line, the demo) builds them here from a :class:`~cygno.settings.Settings`.
Catalog, logbook and tape are imported on first use so a reconstruction job never pays
for them; catalog and logbook are cached per URL, so a process checks the schema once.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cygno.settings import Settings
from cygno.storage.objectstore import ObjectStore

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient

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


class PrefectApiUnavailable(ConnectionError):
    """The Prefect API did not answer (or refused the connection); names its URL."""


def prefect_api_failure(
    url: str, error: Exception, timeout: float, attempts: int = 1
) -> PrefectApiUnavailable:
    """The one message for a Prefect API that failed a request with a transport error
    (httpx's own says neither where nor how long)."""
    import httpx

    if isinstance(error, httpx.TimeoutException):
        tries = f", {attempts} attempts" if attempts > 1 else ""
        return PrefectApiUnavailable(
            f"the Prefect API at {url} did not answer within {timeout:g} s "
            f"({type(error).__name__}{tries})"
        )
    return PrefectApiUnavailable(
        f"the Prefect API at {url} is unreachable ({type(error).__name__}: {error})"
    )


def prefect_environment(settings: Settings) -> dict[str, str]:
    """Prefect's own client settings that bound every request to the API, for the
    environment of processes whose Prefect client we do not create (workers, the flow
    processes they start)."""
    return {
        "PREFECT_API_REQUEST_TIMEOUT": f"{settings.prefect_api_timeout_seconds:g}",
        "PREFECT_CLIENT_MAX_RETRIES": str(settings.prefect_api_retries),
    }


@contextmanager
def prefect_api(settings: Settings) -> Iterator[str]:
    """Prefect API calls inside are bounded: each request waits at most
    ``prefect_api_timeout_seconds`` and is tried ``prefect_api_retries`` more times; one
    that still gets no answer raises :class:`PrefectApiUnavailable` naming the API URL
    (Prefect's default is a minute per attempt, five retries, and a bare ReadTimeout).
    Yields the URL. A client made inside gets these bounds; inside a flow run, use
    :func:`prefect_client`, since ``get_client()`` there reuses the engine's client."""
    import httpx
    from prefect.settings import (
        PREFECT_API_REQUEST_TIMEOUT,
        PREFECT_CLIENT_MAX_RETRIES,
        get_current_settings,
        temporary_settings,
    )

    timeout, retries = settings.prefect_api_timeout_seconds, settings.prefect_api_retries
    updates = {PREFECT_API_REQUEST_TIMEOUT: timeout, PREFECT_CLIENT_MAX_RETRIES: retries}
    with temporary_settings(updates=updates):
        url = get_current_settings().api.url or "(PREFECT_API_URL is not set)"
        try:
            yield url
        except httpx.TransportError as error:
            raise prefect_api_failure(url, error, timeout, retries + 1) from None


@contextmanager
def prefect_client(settings: Settings) -> Iterator[SyncPrefectClient]:
    """A new synchronous Prefect client with :func:`prefect_api`'s bounds (never the
    flow engine's client, whose timeout the process environment set)."""
    from prefect.client.orchestration import get_client

    with prefect_api(settings), get_client(httpx_settings={}, sync_client=True) as client:
        yield client


def post_events(settings: Settings, events: list[dict[str, Any]]) -> None:
    """Deliver Prefect events (``{"event", "resource", "payload"…}``) now, as the event
    bridge does (``POST /events``): delivered or an error, never a silent loss, unlike
    ``emit_event``'s background queue."""
    from prefect.events import Event

    body = [Event(**event).model_dump(mode="json") for event in events]
    with prefect_client(settings) as client:
        client.request("POST", "/events", json=body)
