"""Tape endpoints: one interface, the local HSM emulator and StoRM WebDAV + Tape REST."""

from cygno.storage.tape.base import (
    State,
    TapeChecksumError,
    TapeConflictError,
    TapeCopy,
    TapeEndpoint,
    TapeEntry,
    TapeError,
    TapeOfflineError,
)
from cygno.storage.tape.hsm import LocalHsm
from cygno.storage.tape.http import TapeHttpError
from cygno.storage.tape.rest import TapeRestClient, TapeStageError
from cygno.storage.tape.token import BearerToken
from cygno.storage.tape.webdav import WebDavTape

__all__ = [
    "BearerToken",
    "LocalHsm",
    "State",
    "TapeChecksumError",
    "TapeConflictError",
    "TapeCopy",
    "TapeEndpoint",
    "TapeEntry",
    "TapeError",
    "TapeHttpError",
    "TapeOfflineError",
    "TapeRestClient",
    "TapeStageError",
    "WebDavTape",
]
