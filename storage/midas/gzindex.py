"""gzip access points that travel: a chunk job in another process enters the stream near
its chunk instead of inflating from byte 0 (docs/midas.md: a gzip stream cannot be entered at
an offset without checkpoints taken in one pass).

indexed_gzip (zran) keeps, every `spacing` uncompressed bytes, the compressed position
(with bit offset) and the 32 KiB window before it; `export_index` turns that into bytes.
We keep those bytes zlib-compressed (~1/3) with a fingerprint of the stored file (size,
adler32 of its first and last 64 KiB) so an index shipped with the wrong file fails loudly
instead of inflating garbage.

Measured on indexed_gzip 1.10.3: every zran read call starts again from the access point
before it, so reading in small pieces is quadratic (1 MiB reads: 6x slower). Hence the
index is built with `build_full_index()` (no output copied: faster than a gzip read) and
the reader fetches spans of up to 4 x spacing (indexed_gzip's own buffer default), cut at
`limit` (the end of the wanted chunk) so it does not inflate what nobody reads.
"""

from __future__ import annotations

import io
import zlib
from dataclasses import dataclass
from typing import IO, Any

import indexed_gzip

from .errors import MidasFormatError

FINGERPRINT_BYTES = 64 << 10
READ_BUFFER = 1 << 20  # compressed bytes per read of the underlying file
SPANS_PER_SPACING = 4


@dataclass(frozen=True)
class Fingerprint:
    """What identifies a stored file cheaply: size and adler32 of its two ends."""

    size: int
    head: int
    tail: int

    @classmethod
    def of(cls, raw: IO[bytes]) -> Fingerprint:
        """Reads at most 128 KiB (two ranged reads on object stores); restores the position."""
        position = raw.tell()
        size = raw.seek(0, io.SEEK_END)
        raw.seek(0)
        head = zlib.adler32(raw.read(FINGERPRINT_BYTES))
        raw.seek(max(0, size - FINGERPRINT_BYTES))
        tail = zlib.adler32(raw.read(FINGERPRINT_BYTES))
        raw.seek(position)
        return cls(size, head, tail)

    def require(self, raw: IO[bytes], path: str | None, what: str) -> None:
        """MidasFormatError unless `raw` is the file this fingerprint was taken of."""
        found = Fingerprint.of(raw)
        if found != self:
            raise MidasFormatError(
                path,
                None,
                None,
                f"{what} does not belong to this file: it was made for {self.size} stored "
                f"bytes (adler32 of the ends {self.head:08x}/{self.tail:08x}), the file has "
                f"{found.size} ({found.head:08x}/{found.tail:08x})",
            )


class _Guarded(io.RawIOBase):
    """An IndexedGzipFile whose zran failures become MidasFormatError (file and offset).

    The stored file object is shared with MidasFile's other readers, so its position is
    put back where zran left it before every call (zran reads on without seeking).
    Reads are served from spans of `span` bytes (never past `limit`, when set).
    """

    def __init__(self, gz: Any, raw: IO[bytes], path: str | None, span: int = 0) -> None:
        super().__init__()
        self._gz, self._raw, self._path = gz, raw, path
        self._raw_position = raw.tell()
        self.span, self.limit = span, None
        self._buf, self._at = b"", 0  # the current span and the read position in it
        self._next = 0  # uncompressed offset where the current span ends

    def call(self, method: Any, *args: Any) -> Any:
        self._raw.seek(self._raw_position)
        try:
            return method(*args)
        except (indexed_gzip.ZranError, OSError, ValueError) as error:
            raise self._fail(error) from None
        finally:
            self._raw_position = self._raw.tell()

    def _fail(self, error: Exception) -> MidasFormatError:
        offset = self._gz.tell() if not self._gz.closed else None
        return MidasFormatError(self._path, offset, None, f"gzip stream unreadable: {error}")

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        avail = len(self._buf) - self._at
        if 0 <= n <= avail:
            self._at += n
            return self._buf[self._at - n : self._at]
        head, need = self._buf[self._at :], n - avail
        want = self.span
        if self.limit is not None and self.limit > self._next:
            want = min(want, self.limit - self._next)
        data = self.call(self._gz.read, -1 if n < 0 else max(need, want))
        self._next += len(data)
        self._buf, self._at = data, min(len(data), need) if n >= 0 else len(data)
        return head + data[: self._at]

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        start = self._next - len(self._buf)
        if whence == io.SEEK_SET and start <= offset <= self._next:
            self._at = offset - start  # inside the current span: no zran call
            return offset
        self._buf, self._at = b"", 0
        self._next = self.call(self._gz.seek, offset, whence)
        return self._next

    def tell(self) -> int:
        return self._next - (len(self._buf) - self._at)

    def close(self) -> None:  # the underlying file object stays open: it is not ours
        self._gz.close()
        super().close()


@dataclass(frozen=True)
class GzipAccessIndex:
    """Serialisable access points of one stored gzip file (pickles as plain bytes)."""

    fingerprint: Fingerprint
    uncompressed_size: int
    spacing: int
    n_points: int
    points: bytes  # zlib-compressed indexed_gzip export

    @classmethod
    def build(
        cls, raw: IO[bytes], path: str | None, spacing: int, fingerprint: Fingerprint
    ) -> GzipAccessIndex:
        """One inflate pass over the whole stored file (its position is restored)."""
        position = raw.tell()
        raw.seek(0)
        gz = indexed_gzip.IndexedGzipFile(fileobj=raw, spacing=spacing, readbuf_size=READ_BUFFER)
        reader = _Guarded(gz, raw, path)
        try:
            reader.call(gz.build_full_index)
            uncompressed_size = reader.seek(0, io.SEEK_END)
            buffer = io.BytesIO()
            gz.export_index(fileobj=buffer)
            n_points = sum(1 for _ in gz.seek_points())
        finally:
            reader.close()
        raw.seek(position)
        points = zlib.compress(buffer.getvalue(), 1)
        return cls(fingerprint, uncompressed_size, spacing, n_points, points)

    @property
    def nbytes(self) -> int:
        return len(self.points)

    def open(self, raw: IO[bytes], path: str | None, *, verified: bool = False) -> _Guarded:
        """A seekable reader of the uncompressed stream, entering at the nearest point.

        `verified`: the caller has already matched `raw` against this fingerprint."""
        if not verified:
            self.fingerprint.require(raw, path, "gzip access index")
        raw.seek(0)
        gz = indexed_gzip.IndexedGzipFile(  # buffer_size=1: our spans are the buffer
            fileobj=raw, readbuf_size=READ_BUFFER, buffer_size=1, auto_build=True
        )
        try:
            gz.import_index(fileobj=io.BytesIO(zlib.decompress(self.points)))
        except (indexed_gzip.ZranError, OSError, zlib.error, ValueError) as error:
            gz.close()
            reason = f"gzip access index unusable: {error}"
            raise MidasFormatError(path, None, None, reason) from None
        return _Guarded(gz, raw, path, SPANS_PER_SPACING * self.spacing)
