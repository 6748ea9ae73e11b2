"""One object store for ``file://`` (the embedded default) and ``s3://`` (MinIO, Ceph, AWS).

Everything goes through fsspec, so the same code runs on a laptop and in the cloud.
Keys are the relative names of docs/architecture.md §4 (see :mod:`cygno.storage.keys`);
every key is validated, so nothing reaches outside the store root.

Atomic publish — no reader ever sees a half-written object:

- ``file://``: the bytes go to a hidden temporary file in the destination directory
  (``.<name>.part-<random>``, hidden from :meth:`ObjectStore.list`), are fsynced, and
  ``os.replace`` renames it over the final name, which POSIX guarantees is atomic
  within one file system (hence the same directory, not ``/tmp``).
- ``s3://``: the bytes are written straight to the final key as a multipart upload
  opened with ``autocommit=False``. S3 makes an object visible only when
  ``CompleteMultipartUpload`` succeeds, so parts in flight are invisible; on success
  we complete the upload, on any exception we abort it (no orphaned parts, no object).
  This is cheaper than temp key + server-side copy + delete (which moves every byte
  twice and leaves a stale temp key behind if the process dies in between), and an
  overwrite of an existing key switches from the old to the new object atomically.
- Other fsspec file systems use the same transactional ``commit``/``discard`` protocol.

Checksums (adler32, md5, size) are computed while the bytes flow, never by re-reading.
Credentials arrive as fsspec storage options (built from the settings by
:mod:`cygno.resources`) and are never logged nor shown in ``repr``.
"""

from __future__ import annotations

import io
import os
import shutil
import uuid
from contextlib import suppress
from pathlib import Path
from typing import IO, Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from cygno.storage.checksum import BLOCK, Checksums, ChecksumWriter, checksums_of
from cygno.storage.keys import validate_key, validate_prefix

_TEMP_MARK = ".part-"


def _is_temp(name: str) -> bool:
    return name.startswith(".") and _TEMP_MARK in name


class PublishedFile:
    """A writable file whose content becomes visible under its key only on :meth:`commit`.

    Use it as a context manager (commit on success, discard on exception) or call
    ``close()`` (= commit). After commit, :attr:`checksums` describes what was written.
    """

    def __init__(self, store: ObjectStore, key: str) -> None:
        self.key = key
        self.checksums: Checksums | None = None
        self._store = store
        self._final = store._path(key)
        self._done = False
        if store._local:
            directory, name = os.path.split(self._final)
            os.makedirs(directory, exist_ok=True)
            self._temp = os.path.join(directory, f".{name}{_TEMP_MARK}{uuid.uuid4().hex[:12]}")
            self._raw: Any = open(self._temp, "wb")  # noqa: SIM115 - closed in commit/discard
        else:
            self._raw = store.fs.open(self._final, "wb", autocommit=False)
        self._writer = ChecksumWriter(self._raw)

    def write(self, data: bytes | bytearray | memoryview) -> int:
        return self._writer.write(data)

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def read(self, size: int = -1) -> bytes:  # numpy tells files from paths by `.read`
        raise io.UnsupportedOperation("a published object is write-only until committed")

    def seekable(self) -> bool:
        return False  # bytes are streamed (and summed) in order; zipfile/np.savez cope

    def tell(self) -> int:
        return self._writer.nbytes

    @property
    def adler32(self) -> str:
        """adler32 of the bytes written so far (to check before committing)."""
        return self._writer.adler32

    def flush(self) -> None:
        self._raw.flush()

    @property
    def closed(self) -> bool:
        return self._done

    def commit(self) -> Checksums:
        """Make the object visible under its key, atomically; return its checksums."""
        if self._done:
            if self.checksums is None:
                raise ValueError(f"publish of {self.key!r} was discarded")
            return self.checksums
        self._done = True
        try:
            if self._store._local:
                self._raw.flush()
                os.fsync(self._raw.fileno())
                self._raw.close()
                os.replace(self._temp, self._final)
            else:
                self._raw.close()
                self._raw.commit()
                self._store.fs.invalidate_cache(self._final)
        except BaseException:
            self._abort()
            raise
        self.checksums = self._writer.checksums()
        return self.checksums

    def discard(self) -> None:
        """Drop everything written; the key keeps whatever it held before (or nothing)."""
        if not self._done:
            self._done = True
            self._abort()

    def _abort(self) -> None:
        if self._store._local:
            with suppress(OSError):
                self._raw.close()
            with suppress(FileNotFoundError):
                os.unlink(self._temp)
        else:
            with suppress(Exception):
                self._raw.discard()  # aborts the multipart upload
            self._raw.closed = True

    def close(self) -> None:
        self.commit()

    def __del__(self) -> None:
        # dropped without commit (an exception outside a with-block): leave no debris
        if getattr(self, "_done", True) is False:
            self.discard()

    def __enter__(self) -> PublishedFile:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


#: An S3 endpoint that accepts and never answers fails a call after about
#: (connect or read timeout) x attempts x s3fs retries, instead of hanging it; botocore's
#: error names the endpoint URL (never the keys).
S3_CONNECT_TIMEOUT = 10
S3_READ_TIMEOUT = 30
S3_ATTEMPTS = 2
S3FS_RETRIES = 2


def _with_s3_timeouts(options: dict) -> dict:
    """``options`` with connect/read timeouts and bounded retries unless already given."""
    config = {
        "connect_timeout": S3_CONNECT_TIMEOUT,
        "read_timeout": S3_READ_TIMEOUT,
        "retries": {"max_attempts": S3_ATTEMPTS, "mode": "standard"},
        **options.get("config_kwargs", {}),
    }
    return {**options, "config_kwargs": config}


class ObjectStore:
    """Keys → objects under one fsspec root URL (``file:///…/cygno-data`` or ``s3://bucket``)."""

    def __init__(self, url: str, storage_options: dict | None = None) -> None:
        self.url = url.rstrip("/")
        options = dict(storage_options or {})
        if self.url.startswith("s3://"):
            options = _with_s3_timeouts(options)
        fs, root = fsspec.core.url_to_fs(self.url, **options)
        if self.url.startswith("s3://"):
            fs.retries = min(fs.retries, S3FS_RETRIES)  # s3fs's own retry loop, on top
        self.fs: fsspec.AbstractFileSystem = fs
        self._local = isinstance(fs, LocalFileSystem)
        self.root = root.rstrip("/")
        if self._local:
            os.makedirs(self.root, exist_ok=True)

    def __repr__(self) -> str:  # never the storage options: they hold credentials
        return f"ObjectStore({self.url!r})"

    # --- names -------------------------------------------------------------------------

    def _path(self, key: str) -> str:
        return f"{self.root}/{validate_key(key)}"

    def uri(self, key: str) -> str:
        """Full fsspec URL of ``key`` (``file:///…/raw/LNGS/run01234.mid.gz``, ``s3://…``)."""
        return self.fs.unstrip_protocol(self._path(key))

    def key_of(self, uri: str) -> str:
        """The key of a URL inside this store (a bare valid key is returned as is)."""
        if "://" not in uri and not uri.startswith("/"):
            return validate_key(uri)
        path = self.fs._strip_protocol(uri)
        if not path.startswith(self.root + "/"):
            raise ValueError(f"{uri!r} is not inside the object store {self.url!r}")
        return validate_key(path[len(self.root) + 1 :])

    def local_path(self, key: str) -> Path | None:
        """The file-system path of ``key`` for a ``file://`` store (None for remote stores)."""
        return Path(self._path(key)) if self._local else None

    # --- reading -----------------------------------------------------------------------

    def exists(self, key: str) -> bool:
        """Whether ``key`` is an object; an unreachable store raises (fsspec's isfile
        would answer False, and "no such file" during an outage is a lie)."""
        path = self._path(key)
        self.fs.invalidate_cache(path)
        try:
            return self.fs.info(path)["type"] == "file"
        except FileNotFoundError:
            return False

    def size(self, key: str) -> int:
        path = self._path(key)
        self.fs.invalidate_cache(path)
        return int(self.fs.size(path))

    def etag(self, key: str) -> str:
        """What names this object's content without reading it: S3's ETag, or for a
        local file its modification time and size (a re-upload changes either)."""
        path = self._path(key)
        self.fs.invalidate_cache(path)
        info = self.fs.info(path)
        tag = info.get("ETag") or info.get("etag")
        if tag:
            return str(tag).strip('"')
        return f"{int(info['mtime'] * 1e9):x}-{int(info['size']):x}"

    def _find(self, prefix: str) -> dict[str, dict]:
        """key → fsspec info for every object whose key starts with ``prefix``."""
        validate_prefix(prefix)
        directory = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        base = f"{self.root}/{directory}".rstrip("/")
        self.fs.invalidate_cache(base)
        if not self.fs.isdir(base):
            return {}
        found = {}
        for path, info in self.fs.find(base, detail=True).items():
            key = path[len(self.root) + 1 :]
            if key.startswith(prefix) and not _is_temp(key.rsplit("/", 1)[-1]):
                found[key] = info
        return found

    def list(self, prefix: str = "") -> list[str]:
        """Sorted keys starting with ``prefix`` (a plain string prefix, like S3's)."""
        return sorted(self._find(prefix))

    def sizes(self, prefix: str = "") -> dict[str, int]:
        """key → size for every object under ``prefix`` in one listing (for audits)."""
        return {key: int(info["size"]) for key, info in sorted(self._find(prefix).items())}

    def open(self, key: str, mode: str = "rb", **kwargs: Any) -> IO[Any] | PublishedFile:
        """Open for reading (``rb``/``r``, streamed) or writing (``wb`` = :meth:`publish`)."""
        if mode in ("rb", "r"):
            return self.fs.open(self._path(key), mode, **kwargs)
        if mode == "wb":
            return self.publish(key)
        raise ValueError(f"mode must be 'rb', 'r' or 'wb', got {mode!r}")

    def checksum(self, key: str) -> Checksums:
        """adler32, md5 and size of an object in one streaming read."""
        with self.fs.open(self._path(key), "rb", block_size=BLOCK) as f:
            return checksums_of(f)

    def get_file(self, key: str, local_path: str | os.PathLike) -> Checksums:
        """Stream an object to a local file (atomically replaced); checksums on the way."""
        target = Path(local_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = target.with_name(f".{target.name}{_TEMP_MARK}{uuid.uuid4().hex[:12]}")
        try:
            with (
                self.fs.open(self._path(key), "rb", block_size=BLOCK) as src,
                open(temp, "wb") as f,
            ):
                writer = ChecksumWriter(f)
                shutil.copyfileobj(src, writer, BLOCK)
            os.replace(temp, target)
        finally:
            temp.unlink(missing_ok=True)
        return writer.checksums()

    def get_bytes(self, key: str) -> bytes:
        with self.fs.open(self._path(key), "rb") as f:
            return f.read()

    # --- writing -----------------------------------------------------------------------

    def publish(self, key: str) -> PublishedFile:
        """A writable file that appears under ``key`` atomically when the ``with`` ends."""
        return PublishedFile(self, key)

    def put_file(self, local_path: str | os.PathLike, key: str) -> Checksums:
        """Stream a local file into the store atomically; checksums of the bytes sent."""
        with open(local_path, "rb") as src, self.publish(key) as out:
            shutil.copyfileobj(src, out, BLOCK)
        assert out.checksums is not None
        return out.checksums

    def put_bytes(self, key: str, data: bytes) -> Checksums:
        with self.publish(key) as out:
            out.write(data)
        assert out.checksums is not None
        return out.checksums

    def copy_from(self, src: IO[bytes], key: str) -> Checksums:
        """Stream any readable binary file into ``key`` atomically."""
        with self.publish(key) as out:
            shutil.copyfileobj(src, out, BLOCK)
        assert out.checksums is not None
        return out.checksums

    def delete(self, key: str) -> None:
        """Remove an object; a missing one is not an error (deleting is idempotent)."""
        path = self._path(key)
        with suppress(FileNotFoundError):
            self.fs.rm_file(path)
        self.fs.invalidate_cache(path)

    def move(self, src: str, dst: str) -> None:
        """Rename ``src`` to ``dst``. Local: one atomic rename. S3: server-side copy
        (``dst`` appears atomically), then delete ``src``."""
        source, target = self._path(src), self._path(dst)
        if self._local:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.replace(source, target)
            return
        self.fs.copy(source, target)
        self.fs.rm_file(source)
        self.fs.invalidate_cache(source)
        self.fs.invalidate_cache(target)
