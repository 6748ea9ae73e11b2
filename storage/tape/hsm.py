"""The local HSM emulator: a tape endpoint behind any fsspec URL (the embedded default).

Production tape endpoints keep a file first on a disk buffer, migrate it to tape later
and need a recall before a migrated file can be read again. This emulator does exactly
that, so archive, audit and recall code paths are the real ones:

- ``<url>/<key>`` holds the bytes, and nothing else lives under ``<url>``: the tape
  namespace is exactly the archived files;
- ``<state_url>/<key>.json`` is the HSM's own record (adler32, size, archive time,
  migrated and/or staged back), kept *outside* the tape namespace — by default in the
  sibling ``<url>.hsm``, as a real HSM keeps it in its database;
- :meth:`LocalHsm.migrate` moves disk-buffer files to tape (all, or those older than
  ``older_than`` seconds, like a migration policy); reading a migrated file without
  :meth:`LocalHsm.stage` raises :class:`TapeOfflineError`; staging takes
  ``recall_seconds``.

Archive = stream copy from the object store (adler32 computed on the way), read the
copy back, compare adler32, rename into place.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
import uuid
from typing import IO, TYPE_CHECKING, Any

import fsspec

from cygno.storage.checksum import BLOCK, ChecksumReader, adler32_of
from cygno.storage.keys import validate_key, validate_prefix
from cygno.storage.tape.base import (
    State,
    TapeChecksumError,
    TapeConflictError,
    TapeCopy,
    TapeEndpoint,
    TapeEntry,
    TapeOfflineError,
)

if TYPE_CHECKING:
    from cygno.storage.objectstore import ObjectStore

_TEMP_MARK = ".part-"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def _fs(url: str, storage_options: dict) -> tuple[fsspec.AbstractFileSystem, str]:
    fs, root = fsspec.core.url_to_fs(url, **storage_options)
    root = root.rstrip("/")
    fs.makedirs(root, exist_ok=True)
    return fs, root


class LocalHsm(TapeEndpoint):
    """A tape endpoint at ``url`` (any fsspec URL), its HSM state at ``state_url``."""

    def __init__(
        self,
        url: str,
        recall_seconds: float = 1.0,
        storage_options: dict | None = None,
        state_url: str | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.recall_seconds = recall_seconds
        self.fs, self.root = _fs(self.url, storage_options or {})
        if state_url is None:
            top = self.root.strip("/")
            if not top or ("/" not in top and "file" not in self.fs.protocol):
                raise ValueError(
                    f"tape endpoint {url!r} is a bucket or filesystem root: "
                    "give the HSM state its own state_url"
                )
            state_url = f"{self.url}.hsm"
        self.state_url = state_url.rstrip("/")
        self.state_fs, self.state_root = _fs(self.state_url, storage_options or {})

    def __repr__(self) -> str:
        return f"LocalHsm({self.url!r}, recall_seconds={self.recall_seconds})"

    # --- names and HSM records ----------------------------------------------------------

    def _path(self, key: str) -> str:
        return f"{self.root}/{validate_key(key)}"

    def _meta_path(self, key: str) -> str:
        return f"{self.state_root}/{validate_key(key)}.json"

    def uri(self, key: str) -> str:
        return self.fs.unstrip_protocol(self._path(key))

    def key_of(self, uri: str) -> str:
        path = self.fs._strip_protocol(uri)
        if not path.startswith(self.root + "/"):
            raise ValueError(f"{uri!r} is not on the tape endpoint {self.url!r}")
        return validate_key(path[len(self.root) + 1 :])

    def _read_meta(self, key: str) -> dict[str, Any] | None:
        try:
            with self.state_fs.open(self._meta_path(key), "rb") as f:
                return json.load(f)
        except FileNotFoundError:
            return None

    def _write_meta(self, key: str, meta: dict[str, Any]) -> None:
        """Write via a temp name and rename: no half-written records."""
        path = self._meta_path(key)
        directory = path.rsplit("/", 1)[0]
        self.state_fs.makedirs(directory, exist_ok=True)
        temp = f"{path}{_TEMP_MARK}{uuid.uuid4().hex[:12]}"
        with self.state_fs.open(temp, "wb") as f:
            f.write(json.dumps(meta, sort_keys=True).encode())
        self.state_fs.mv(temp, path)

    def checksum(self, key: str) -> str | None:
        """The adler32 the HSM recorded at archive time (no read, no recall)."""
        if not self.fs.isfile(self._path(key)):
            return None
        meta = self._read_meta(key)
        return None if meta is None else meta["adler32"]

    def state(self, key: str) -> State:
        if not self.fs.isfile(self._path(key)):
            return "missing"
        meta = self._read_meta(key) or {}
        return "migrated" if meta.get("migrated") and not meta.get("staged") else "disk"

    # --- archive and read back ------------------------------------------------------------

    def archive(
        self, store: ObjectStore, key: str, expected_adler32: str | None = None
    ) -> TapeCopy:
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
        state = self.state(key)
        if state == "missing":
            raise FileNotFoundError(self.uri(key))
        if state == "migrated":
            raise TapeOfflineError(f"{self.uri(key)} is on tape only: stage/recall it first")
        return self.fs.open(self._path(key), "rb", block_size=BLOCK)

    def verify(self, key: str, expected_adler32: str) -> bool:
        """Read the tape copy's bytes (staging it if needed) and compare adler32: the
        emulator's record is only what it was told, the bytes are the proof."""
        if self.state(key) == "missing":
            return False
        self.stage(key)
        with self.open(key) as f:
            return adler32_of(f) == expected_adler32

    def rename(self, key: str, new_key: str) -> None:
        source, target = self._path(key), self._path(new_key)
        if not self.fs.isfile(source):
            raise FileNotFoundError(self.uri(key))
        if self.fs.exists(target):
            raise TapeConflictError(f"{self.uri(new_key)} exists: not renaming {key} over it")
        self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
        self.fs.mv(source, target)
        meta = self._read_meta(key)
        if meta is not None:
            self._write_meta(new_key, meta)
            self.state_fs.rm_file(self._meta_path(key))

    def delete(self, key: str) -> None:
        if self.fs.exists(self._path(key)):
            self.fs.rm_file(self._path(key))
        if self.state_fs.exists(self._meta_path(key)):
            self.state_fs.rm_file(self._meta_path(key))

    def list(self, prefix: str = "") -> list[TapeEntry]:
        validate_prefix(prefix)
        self.fs.invalidate_cache(self.root)
        entries = []
        for path, info in sorted(self.fs.find(self.root, detail=True).items()):
            key = path[len(self.root) + 1 :]
            if _TEMP_MARK in key.rsplit("/", 1)[-1] or not key.startswith(prefix):
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
