"""Tape archive behind an fsspec URL, with the behaviour of a hierarchical storage manager.

Production tape endpoints (CTA/dCache/StoRM behind WebDAV or XRootD) keep a file first
on a disk buffer, migrate it to tape later, and need a *recall* (stage) before a migrated
file can be read again; the namespace keeps each file's adler32. The embedded default
(``CYGNO_TAPE_URL``, a local directory) emulates exactly that, so archive, audit and
recall code paths are the real ones:

- ``<root>/<key>`` holds the bytes under the same key as the object store (a stable
  URI that does not change when the file is migrated);
- ``<root>/.hsm/<key>.json`` is the namespace entry: adler32, size, archive time, and
  whether the file is migrated to tape and/or staged back on disk;
- :meth:`TapeArchive.migrate` moves disk-buffer files to tape (all, or those older
  than ``older_than`` seconds, like an HSM migration policy); reading a migrated file
  without :meth:`TapeArchive.stage` raises :class:`TapeOfflineError`, and staging
  takes ``recall_seconds``.

Archive = stream copy from the object store (adler32 computed on the way), read the
tape copy back, compare adler32. An existing copy with a different checksum is never
overwritten silently (:class:`TapeConflictError`).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
import uuid
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Literal

import fsspec

from cygno.storage.checksum import BLOCK, ChecksumReader, Checksums, adler32_of
from cygno.storage.keys import validate_key, validate_prefix

if TYPE_CHECKING:
    from cygno.settings import Settings
    from cygno.storage.objectstore import ObjectStore

State = Literal["disk", "migrated", "missing"]
_META = ".hsm"
_TEMP_MARK = ".part-"


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


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


class TapeArchive:
    """A tape endpoint at ``url`` (any fsspec URL; HSM states kept in its namespace)."""

    def __init__(
        self, url: str, recall_seconds: float = 1.0, storage_options: dict | None = None
    ) -> None:
        self.url = url.rstrip("/")
        self.recall_seconds = recall_seconds
        fs, root = fsspec.core.url_to_fs(self.url, **(storage_options or {}))
        self.fs: fsspec.AbstractFileSystem = fs
        self.root = root.rstrip("/")
        self.fs.makedirs(self.root, exist_ok=True)

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> TapeArchive:
        if settings is None:
            from cygno.settings import get_settings

            settings = get_settings()
        return cls(settings.tape_url, settings.tape_recall_seconds)

    def __repr__(self) -> str:
        return f"TapeArchive({self.url!r}, recall_seconds={self.recall_seconds})"

    # --- names and namespace ------------------------------------------------------------

    def _path(self, key: str) -> str:
        key = validate_key(key)
        if key.split("/", 1)[0] == _META:
            raise ValueError(f"{_META}/ is the tape namespace, not a file key")
        return f"{self.root}/{key}"

    def _meta_path(self, key: str) -> str:
        return f"{self.root}/{_META}/{validate_key(key)}.json"

    def uri(self, key: str) -> str:
        return self.fs.unstrip_protocol(self._path(key))

    def key_of(self, uri: str) -> str:
        path = self.fs._strip_protocol(uri)
        if not path.startswith(self.root + "/"):
            raise ValueError(f"{uri!r} is not on the tape endpoint {self.url!r}")
        return validate_key(path[len(self.root) + 1 :])

    def _read_meta(self, key: str) -> dict[str, Any] | None:
        try:
            with self.fs.open(self._meta_path(key), "rb") as f:
                return json.load(f)
        except FileNotFoundError:
            return None

    def _write_atomic(self, path: str, write: Any) -> Any:
        """Write via a temp name beside ``path`` and rename: no half-written files."""
        directory, name = path.rsplit("/", 1)
        self.fs.makedirs(directory, exist_ok=True)
        temp = f"{directory}/.{name}{_TEMP_MARK}{uuid.uuid4().hex[:12]}"
        try:
            with self.fs.open(temp, "wb") as f:
                result = write(f)
            self.fs.mv(temp, path)
        finally:
            if self.fs.exists(temp):
                self.fs.rm_file(temp)
        return result

    def _write_meta(self, key: str, meta: dict[str, Any]) -> None:
        data = json.dumps(meta, sort_keys=True).encode()
        self._write_atomic(self._meta_path(key), lambda f: f.write(data))

    def checksum(self, key: str) -> str | None:
        """The adler32 the namespace recorded at archive time (no read, no recall)."""
        meta = self._read_meta(key)
        return None if meta is None else meta["adler32"]

    def state(self, key: str) -> State:
        """ "disk" (on the disk buffer, or staged back), "migrated" (tape only), "missing"."""
        if not self.fs.isfile(self._path(key)):
            return "missing"
        meta = self._read_meta(key) or {}
        return "migrated" if meta.get("migrated") and not meta.get("staged") else "disk"

    # --- archive and read back ------------------------------------------------------------

    def archive(
        self, store: ObjectStore, key: str, expected_adler32: str | None = None
    ) -> TapeCopy:
        """Copy ``key`` from the store to tape, read it back and compare adler32.

        With ``expected_adler32`` (the catalog's), an existing copy whose namespace
        checksum already matches is accepted without copying again, and a source that
        does not match it is refused. An existing copy of a *different* file raises
        :class:`TapeConflictError` instead of being overwritten.
        """
        path = self._path(key)
        existing = self._read_meta(key) if self.fs.isfile(path) else None
        if existing and expected_adler32 and existing["adler32"] == expected_adler32:
            return TapeCopy(self.uri(key), existing["adler32"], existing["size"])

        directory, name = path.rsplit("/", 1)
        self.fs.makedirs(directory, exist_ok=True)
        temp = f"{directory}/.{name}{_TEMP_MARK}{uuid.uuid4().hex[:12]}"
        try:
            with store.open(key, "rb") as src, self.fs.open(temp, "wb") as dst:
                reader = ChecksumReader(src, md5=False)
                shutil.copyfileobj(reader, dst, BLOCK)
            source = reader.checksums()
            if expected_adler32 and source.adler32 != expected_adler32:
                raise TapeChecksumError(
                    f"{store.uri(key)} has adler32 {source.adler32}, "
                    f"the catalog expects {expected_adler32}; not archived"
                )
            if existing and existing["adler32"] != source.adler32:
                raise TapeConflictError(
                    f"{self.uri(key)} already holds a file with adler32 {existing['adler32']}, "
                    f"the source has {source.adler32}; refusing to overwrite"
                )
            with self.fs.open(temp, "rb") as f:
                readback = adler32_of(f)
            if readback != source.adler32:
                raise TapeChecksumError(
                    f"tape copy of {key} reads back as adler32 {readback}, "
                    f"source was {source.adler32}"
                )
            self.fs.mv(temp, path)
        finally:
            if self.fs.exists(temp):
                self.fs.rm_file(temp)
        meta = {
            "adler32": source.adler32,
            "size": source.size,
            "archived_at": _now(),
            "migrated": False,
            "staged": False,
        }
        self._write_meta(key, meta)
        return TapeCopy(self.uri(key), source.adler32, source.size)

    def migrate(self, older_than: float = 0.0) -> list[str]:
        """Move disk-buffer (and staged) files older than ``older_than`` seconds to tape;
        returns the keys migrated."""
        cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=older_than)
        migrated = []
        for entry in self.list():
            if entry.state != "disk":
                continue
            meta = self._read_meta(entry.key)
            if meta is None:
                continue  # not archived by us: nothing known to migrate
            since = dt.datetime.fromisoformat(meta.get("staged_at") or meta["archived_at"])
            if since <= cutoff:
                meta.update(migrated=True, staged=False, migrated_at=_now())
                self._write_meta(entry.key, meta)
                migrated.append(entry.key)
        return migrated

    def stage(self, key: str) -> None:
        """Bring a migrated file back to the disk buffer (takes ``recall_seconds``)."""
        state = self.state(key)
        if state == "missing":
            raise FileNotFoundError(self.uri(key))
        if state == "migrated":
            time.sleep(self.recall_seconds)
            meta = self._read_meta(key) or {}
            meta.update(staged=True, staged_at=_now())
            self._write_meta(key, meta)

    def open(self, key: str) -> IO[bytes]:
        """Read a file that is on disk; a migrated one raises :class:`TapeOfflineError`."""
        state = self.state(key)
        if state == "missing":
            raise FileNotFoundError(self.uri(key))
        if state == "migrated":
            raise TapeOfflineError(f"{self.uri(key)} is on tape only: stage/recall it first")
        return self.fs.open(self._path(key), "rb", block_size=BLOCK)

    def recall(self, key: str, store: ObjectStore, dest_key: str | None = None) -> Checksums:
        """Stage ``key`` from tape and stream it into ``store`` (for reprocessing after
        the raw file left S3); the copy is checked against the namespace adler32 and
        published atomically only if it matches."""
        self.stage(key)
        expected = self.checksum(key)
        with self.open(key) as src, store.publish(dest_key or key) as out:
            shutil.copyfileobj(src, out, BLOCK)
            written = out.adler32
            if expected is not None and written != expected:
                raise TapeChecksumError(
                    f"recalled {self.uri(key)} has adler32 {written}, namespace says {expected}"
                )
        assert out.checksums is not None
        return out.checksums

    def verify(self, key: str, expected_adler32: str) -> bool:
        """Read the tape copy's bytes (staging it if needed) and compare adler32."""
        if self.state(key) == "missing":
            return False
        self.stage(key)
        with self.open(key) as f:
            return adler32_of(f) == expected_adler32

    def delete(self, key: str) -> None:
        """Remove a file and its namespace entry (operators, tests); missing is fine."""
        for path in (self._path(key), self._meta_path(key)):
            if self.fs.exists(path):
                self.fs.rm_file(path)

    def list(self, prefix: str = "") -> list[TapeEntry]:
        """Every file on the endpoint under ``prefix`` with its namespace state."""
        validate_prefix(prefix)
        self.fs.invalidate_cache(self.root)
        entries = []
        for path, info in sorted(self.fs.find(self.root, detail=True).items()):
            key = path[len(self.root) + 1 :]
            name = key.rsplit("/", 1)[-1]
            if key.startswith(f"{_META}/") or _TEMP_MARK in name or not key.startswith(prefix):
                continue
            meta = self._read_meta(key) or {}
            migrated = meta.get("migrated") and not meta.get("staged")
            archived = meta.get("archived_at")
            entries.append(
                TapeEntry(
                    key=key,
                    uri=self.fs.unstrip_protocol(path),
                    size=int(info["size"]),
                    state="migrated" if migrated else "disk",
                    adler32=meta.get("adler32"),
                    archived_at=dt.datetime.fromisoformat(archived) if archived else None,
                )
            )
        return entries
