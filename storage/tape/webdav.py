"""A tape endpoint reached as CNAF reaches it: StoRM WebDAV + the WLCG Tape REST API.

- data path over HTTPS with a bearer token (:class:`~cygno.storage.tape.token.BearerToken`):
  ``PUT`` to a temporary name, ``MOVE`` into place (no half-written file ever carries the
  final name), ``GET``, ``HEAD``, ``DELETE``, ``MKCOL`` for parent collections and
  ``PROPFIND`` (depth 1, walked) for listings;
- checksums asked of the server: ``Want-Digest: adler32`` on ``HEAD``, answered by
  ``Digest: adler32=<hex>`` (RFC 3230; StoRM keeps the adler32 it computed on upload).
  Only when a server gives no digest are the bytes read back;
- with a Tape REST URL, locality from ``archiveinfo`` (a file only on tape is
  ``migrated``) and recalls through stage requests; without one the endpoint is plain
  disk (a WebDAV server with no tape behind it).

URLs: ``davs://host:port/path`` is ``https://…``, ``dav://`` is ``http://``; the
catalog records the URL as configured.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import io
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

import httpx

from cygno.storage.checksum import BLOCK, ChecksumReader, adler32_of, format_adler32
from cygno.storage.keys import validate_key, validate_prefix
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
from cygno.storage.tape.http import TokenSession
from cygno.storage.tape.rest import TapeRestClient

if TYPE_CHECKING:
    from cygno.storage.objectstore import ObjectStore
    from cygno.storage.tape.token import BearerToken

_SCHEMES = {"davs": "https", "https": "https", "dav": "http", "http": "http"}
_DAV = "{DAV:}"
_TEMP_MARK = ".part-"
#: Tape REST localities → our states (UNAVAILABLE is temporary: an error, retried).
_LOCALITY: dict[str, State] = {
    "DISK": "disk",
    "DISK_AND_TAPE": "disk",
    "TAPE": "migrated",
    "LOST": "missing",
    "NONE": "missing",
}


def parse_digest(header: str | None, algorithm: str = "adler32") -> str | None:
    """The ``algorithm`` value of an RFC 3230 ``Digest`` header (adler32 as 8 hex digits)."""
    for item in (header or "").split(","):
        name, _, value = item.strip().partition("=")
        if name.strip().lower() == algorithm and value.strip():
            value = value.strip()
            return format_adler32(int(value, 16)) if algorithm == "adler32" else value
    return None


class _ResponseReader(io.RawIOBase):
    """A streamed HTTP response body as a readable file (closing it ends the response)."""

    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self._chunks = response.iter_bytes(BLOCK)
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            self._pending = next(self._chunks, b"")
            if not self._pending:
                return 0
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def close(self) -> None:
        if not self.closed:
            self._response.close()
        super().close()


class WebDavTape(TapeEndpoint):
    """StoRM WebDAV at ``url``, optionally with the WLCG Tape REST API at ``rest_url``."""

    def __init__(
        self,
        url: str,
        token: BearerToken | None = None,
        *,
        rest_url: str | None = None,
        verify: Any = True,
        timeout: float = 60.0,
        poll_seconds: float = 10.0,
        stage_timeout_seconds: float = 6 * 3600.0,
    ) -> None:
        self.url = url.rstrip("/")
        parts = urlsplit(self.url)
        if parts.scheme not in _SCHEMES:
            raise ValueError(f"tape URL {url!r}: expected davs://, https://, dav:// or http://")
        self._origin = f"{_SCHEMES[parts.scheme]}://{parts.netloc}"
        self._root = unquote(parts.path).rstrip("/")
        self.session = TokenSession(token, verify=verify, timeout=timeout)
        self.rest = (
            TapeRestClient(
                rest_url,
                self.session,
                poll_seconds=poll_seconds,
                timeout_seconds=stage_timeout_seconds,
            )
            if rest_url
            else None
        )
        self._collections: set[str] = set()

    def __repr__(self) -> str:
        return f"WebDavTape({self.url!r}, rest={self.rest!r})"

    # --- names ---------------------------------------------------------------------------

    def path(self, key: str) -> str:
        """The namespace path of ``key`` (what the Tape REST API names)."""
        return f"{self._root}/{validate_key(key)}"

    def _http(self, path: str) -> str:
        return self._origin + quote(path)

    def uri(self, key: str) -> str:
        return f"{self.url}/{validate_key(key)}"

    def key_of(self, uri: str) -> str:
        if not uri.startswith(self.url + "/"):
            raise ValueError(f"{uri!r} is not on the tape endpoint {self.url!r}")
        return validate_key(uri[len(self.url) + 1 :])

    # --- the data path -------------------------------------------------------------------

    def _head(self, path: str) -> httpx.Response | None:
        response = self.session.send("HEAD", self._http(path), headers={"Want-Digest": "adler32"})
        if response.status_code == 404:
            return None
        return TokenSession.expect(response, 200)

    def _server_adler32(self, path: str) -> str | None:
        response = self._head(path)
        return None if response is None else parse_digest(response.headers.get("Digest"))

    def _read_adler32(self, path: str) -> str:
        with self._get(path) as f:
            return adler32_of(f)

    def _proven_adler32(self, path: str) -> str:
        """The server's adler32 of ``path``, or the bytes' own when it gives none."""
        return self._server_adler32(path) or self._read_adler32(path)

    def _staged_adler32(self, key: str) -> str:
        """adler32 of the bytes themselves (recalled first if on tape only)."""
        self.stage(key)
        return self._read_adler32(self.path(key))

    def _get(self, path: str) -> IO[bytes]:
        response = self.session.send("GET", self._http(path), stream=True)
        if response.status_code == 404:
            response.close()
            raise FileNotFoundError(self._origin + path)
        try:
            TokenSession.expect(response, 200)
        finally:
            if response.status_code != 200:
                response.close()
        return io.BufferedReader(_ResponseReader(response), BLOCK)

    def _mkcols(self, directory: str) -> None:
        """Create the collections down to ``directory`` (405: it exists already)."""
        current = self._root  # the endpoint's own root exists: it is configured
        for part in filter(None, directory[len(self._root) :].split("/")):
            current = f"{current}/{part}"
            if current in self._collections:
                continue
            response = self.session.send("MKCOL", self._http(current) + "/")
            TokenSession.expect(response, 201, 405)
            self._collections.add(current)

    def _move(self, source: str, target: str) -> None:
        headers = {"Destination": self._http(target), "Overwrite": "F"}
        response = self.session.send("MOVE", self._http(source), headers=headers)
        if response.status_code == 412:
            raise TapeConflictError(f"{self._origin}{target} exists already: not moved over")
        TokenSession.expect(response, 201, 204)

    def _delete(self, path: str) -> None:
        TokenSession.expect(self.session.send("DELETE", self._http(path)), 200, 204, 404)

    def checksum(self, key: str) -> str | None:
        return self._server_adler32(self.path(key))

    def archive(
        self, store: ObjectStore, key: str, expected_adler32: str | None = None
    ) -> TapeCopy:
        path = self.path(key)
        head = self._head(path)
        held = None
        if head is not None:
            held = parse_digest(head.headers.get("Digest")) or self._staged_adler32(key)
            if expected_adler32 and held == expected_adler32:
                return TapeCopy(self.uri(key), held, int(head.headers["Content-Length"]))

        directory, name = path.rsplit("/", 1)
        temp = f"{directory}/.{name}{_TEMP_MARK}{uuid.uuid4().hex[:12]}"
        self._mkcols(directory)
        readers: list[ChecksumReader] = []

        def body() -> Iterator[bytes]:
            with store.open(key, "rb") as src:
                reader = ChecksumReader(src, md5=False)
                readers.append(reader)
                while block := reader.read(BLOCK):
                    yield block

        try:
            length = {"Content-Length": str(store.size(key))}  # not chunked: StoRM, FTS
            response = self.session.send("PUT", self._http(temp), headers=length, content=body)
            TokenSession.expect(response, 200, 201, 204)
            source = readers[-1].checksums()
            if expected_adler32 and source.adler32 != expected_adler32:
                raise TapeChecksumError(
                    f"{store.uri(key)} has adler32 {source.adler32}, "
                    f"the catalog expects {expected_adler32}; not archived"
                )
            if held is not None and held != source.adler32:
                raise TapeConflictError(
                    f"{self.uri(key)} already holds a file with adler32 {held}, "
                    f"the source has {source.adler32}; refusing to overwrite"
                )
            on_tape = self._proven_adler32(temp)
            if on_tape != source.adler32:
                raise TapeChecksumError(
                    f"tape copy of {key} has adler32 {on_tape}, source was {source.adler32}"
                )
            if held is None:
                self._move(temp, path)
        finally:
            self._delete(temp)
        return TapeCopy(self.uri(key), source.adler32, source.size)

    # --- tape states and recall ---------------------------------------------------------

    def _localities(self, paths: list[str]) -> dict[str, State]:
        assert self.rest is not None
        states: dict[str, State] = {}
        for path, entry in self.rest.archiveinfo(paths).items():
            locality = entry.get("locality")
            if locality in _LOCALITY:
                states[path] = _LOCALITY[locality]
            elif locality is None and self._head(path) is None:
                states[path] = "missing"  # an error entry for a file that is not there
            else:
                raise TapeError(f"archiveinfo for {path}: {entry.get('error') or locality}")
        return states

    def state(self, key: str) -> State:
        path = self.path(key)
        if self.rest is None:
            return "disk" if self._head(path) is not None else "missing"
        return self._localities([path])[path]

    def stage(self, key: str) -> None:
        state = self.state(key)
        if state == "missing":
            raise FileNotFoundError(self.uri(key))
        if state == "migrated":
            assert self.rest is not None
            self.rest.recall([self.path(key)])

    def open(self, key: str) -> IO[bytes]:
        if self.rest is not None and self.state(key) == "migrated":
            raise TapeOfflineError(f"{self.uri(key)} is on tape only: stage/recall it first")
        return self._get(self.path(key))

    def verify(self, key: str, expected_adler32: str) -> bool:
        """The server's adler32 (no recall needed); the bytes, staged and read, only
        when the server gives none."""
        head = self._head(self.path(key))
        if head is None:
            return False
        held = parse_digest(head.headers.get("Digest")) or self._staged_adler32(key)
        return held == expected_adler32

    def rename(self, key: str, new_key: str) -> None:
        source, target = self.path(key), self.path(new_key)
        if self._head(source) is None:
            raise FileNotFoundError(self.uri(key))
        self._mkcols(target.rsplit("/", 1)[0])
        self._move(source, target)

    def delete(self, key: str) -> None:
        self._delete(self.path(key))

    # --- listing ------------------------------------------------------------------------

    def _propfind(self, directory: str) -> list[tuple[str, bool, int, dt.datetime | None]]:
        """(path, is_collection, size, modified) of the members of ``directory``."""
        response = self.session.send(
            "PROPFIND", self._http(directory) + "/", headers={"Depth": "1"}
        )
        if response.status_code == 404:
            return []
        tree = ET.fromstring(TokenSession.expect(response, 207).content)
        members = []
        for item in tree.iter(f"{_DAV}response"):
            href = unquote(urlsplit(item.findtext(f"{_DAV}href", "")).path).rstrip("/")
            if href == directory.rstrip("/"):
                continue
            collection = item.find(f".//{_DAV}resourcetype/{_DAV}collection") is not None
            size = int(item.findtext(f".//{_DAV}getcontentlength") or 0)
            modified = item.findtext(f".//{_DAV}getlastmodified")
            when = email.utils.parsedate_to_datetime(modified) if modified else None
            members.append((href, collection, size, when))
        return members

    def list(self, prefix: str = "") -> list[TapeEntry]:
        validate_prefix(prefix)
        start = f"{self._root}/{prefix.rsplit('/', 1)[0]}" if "/" in prefix else self._root
        files: list[tuple[str, int, dt.datetime | None]] = []
        pending = [start]
        while pending:
            for path, collection, size, when in self._propfind(pending.pop()):
                key = path[len(self._root) + 1 :]
                if collection:
                    pending.append(path)
                elif key.startswith(prefix) and _TEMP_MARK not in key.rsplit("/", 1)[-1]:
                    files.append((path, size, when))
        files.sort()
        states = self._localities([p for p, _, _ in files]) if self.rest and files else {}
        return [
            TapeEntry(
                key=path[len(self._root) + 1 :],
                uri=self.uri(path[len(self._root) + 1 :]),
                size=size,
                state=states.get(path, "disk"),
                adler32=self._server_adler32(path),
                archived_at=when,
            )
            for path, size, when in files
        ]
