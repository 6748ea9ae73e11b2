"""What every tape endpoint offers, whatever protocol reaches it.

A tape endpoint keeps each raw file under the same key as the object store (a stable
URI that does not change when the file is migrated), knows each file's adler32, and
needs a *recall* (stage) before a migrated file can be read again. Two endpoints
implement it: :class:`~cygno.storage.tape.hsm.LocalHsm`, the embedded emulator, and
:class:`~cygno.storage.tape.webdav.WebDavTape`, StoRM WebDAV with the WLCG Tape REST
API (CNAF). Archive and recall code paths are written once, against this interface.
"""

from __future__ import annotations

import datetime as dt
import shutil
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Literal

from cygno.storage.checksum import BLOCK, Checksums

if TYPE_CHECKING:
    from cygno.storage.objectstore import ObjectStore

State = Literal["disk", "migrated", "missing"]


class TapeError(RuntimeError):
    """Base class of tape failures."""


class TapeChecksumError(TapeError):
    """The bytes read back do not have the adler32 they should."""


class TapeConflictError(TapeError):
    """A different file (other adler32) already sits on tape under this key."""


class TapeOfflineError(TapeError):
    """The file is migrated to tape: stage (recall) it before reading."""


@dataclass(frozen=True)
class TapeCopy:
    uri: str
    adler32: str
    size: int


@dataclass(frozen=True)
class TapeEntry:
    """One file on tape as the namespace lists it (for the auditor)."""

    key: str
    uri: str
    size: int
    state: State
    adler32: str | None
    archived_at: dt.datetime | None


class TapeEndpoint(ABC):
    """A tape endpoint: archive with a proven adler32, stage, read, verify, list."""

    url: str

    @abstractmethod
    def uri(self, key: str) -> str:
        """The stable URI of ``key`` on this endpoint (what the catalog records)."""

    @abstractmethod
    def key_of(self, uri: str) -> str:
        """The key of a URI on this endpoint (ValueError for another endpoint's URI)."""

    @abstractmethod
    def state(self, key: str) -> State:
        """ "disk" (readable now), "migrated" (tape only: stage first) or "missing"."""

    @abstractmethod
    def checksum(self, key: str) -> str | None:
        """The adler32 the endpoint keeps for ``key`` (no recall, no read of the bytes
        where the endpoint can answer without); None when it has none or no file."""

    @abstractmethod
    def archive(
        self, store: ObjectStore, key: str, expected_adler32: str | None = None
    ) -> TapeCopy:
        """Copy ``key`` from ``store`` and prove the copy's adler32.

        With ``expected_adler32`` (the catalog's), an existing copy whose checksum
        already matches is accepted without copying again, and a source that does not
        match it is refused (:class:`TapeChecksumError`). An existing copy of a
        *different* file raises :class:`TapeConflictError`, never overwritten.
        """

    @abstractmethod
    def stage(self, key: str) -> None:
        """Bring a migrated file back to disk (returns once it is readable)."""

    @abstractmethod
    def open(self, key: str) -> IO[bytes]:
        """Read a file that is on disk; a migrated one raises :class:`TapeOfflineError`."""

    @abstractmethod
    def verify(self, key: str, expected_adler32: str) -> bool:
        """Whether the tape copy has ``expected_adler32`` (False when missing)."""

    @abstractmethod
    def rename(self, key: str, new_key: str) -> None:
        """Move a file to another key on the endpoint (a namespace operation: no
        recall, the bytes stay where they are); never over an existing file."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove a file (operators, tests); a missing one is fine."""

    @abstractmethod
    def list(self, prefix: str = "") -> list[TapeEntry]:
        """Every file on the endpoint under ``prefix``."""

    def recall(self, key: str, store: ObjectStore, dest_key: str | None = None) -> Checksums:
        """Stage ``key`` and stream it into ``store`` (reprocessing after the raw file
        left S3); published atomically only if it has the endpoint's adler32."""
        self.stage(key)
        expected = self.checksum(key)
        with self.open(key) as src, store.publish(dest_key or key) as out:
            shutil.copyfileobj(src, out, BLOCK)
            written = out.adler32
            if expected is not None and written != expected:
                raise TapeChecksumError(
                    f"recalled {self.uri(key)} has adler32 {written}, the endpoint says {expected}"
                )
        assert out.checksums is not None
        return out.checksums
