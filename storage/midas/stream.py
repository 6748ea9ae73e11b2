"""Uncompressed byte streams over a stored MIDAS file: plain, gzip, LZ4 frame, bzip2.

The file is never loaded whole: compressed input is pulled in 1 MiB blocks and inflated with
a bounded output size. gzip is inflated with isal (several times faster than zlib); entering
a gzip stream mid-way is gzindex.py's job (indexed_gzip access points).
"""

from __future__ import annotations

import bz2
import zlib
from typing import IO, Any

try:
    from isal import isal_zlib as _fast_zlib
except ImportError:  # pragma: no cover - isal is pinned
    _fast_zlib = zlib

RAW_BLOCK = 1 << 20
MIN_OUT = 1 << 20
SKIP_OUT = 4 << 20

#: No real run inflates more than this (camera pictures are noise around a pedestal,
#: a few times smaller compressed); beyond it the input is refused as a bomb.
MAX_INFLATION_RATIO = 32
#: ... once at least this much has been inflated (small files have headers that shrink well).
INFLATION_FLOOR = 16 << 20
#: What any decompressor raises for damaged input (isal's IsalError, zlib.error, bz2 and
#: lz4's OSError/RuntimeError/EOFError).
_DECOMPRESS_ERRORS: tuple[type[BaseException], ...] = (
    zlib.error,
    getattr(_fast_zlib, "error", zlib.error),
    OSError,
    EOFError,
    RuntimeError,
    ValueError,
)

MAGIC = {
    "gzip": b"\x1f\x8b",
    "lz4": b"\x04\x22\x4d\x18",
    "bz2": b"\x42\x5a\x68",
}


def detect_compression(head: bytes) -> str | None:
    """Compression by magic bytes (suffixes lie); None means a plain event stream."""
    for kind, magic in MAGIC.items():
        if head.startswith(magic):
            return kind
    return None


class PlainSource:
    """An uncompressed file; skips are seeks when the file object can seek."""

    def __init__(self, raw: IO[bytes], head: bytes, base: int, size: int | None) -> None:
        self._raw, self._head, self._base, self._size = raw, head, base, size
        self.offset = 0
        self.truncated = False
        self.garbage: int | None = None

    def read(self, n: int) -> bytes:
        data = b""
        if self._head:
            data, self._head = self._head[:n], self._head[n:]
        while len(data) < n:
            more = self._raw.read(n - len(data))
            if not more:
                break
            data = more if not data else data + more
        self.offset += len(data)
        return data

    def skip(self, n: int) -> int:
        if self._size is None:  # cannot seek: read and drop, a block at a time
            done = 0
            while done < n and (block := self.read(min(n - done, SKIP_OUT))):
                done += len(block)
            return done
        n = max(0, min(n, self._size - self.offset))
        self._head = self._head[n:]
        self.offset += n
        self._raw.seek(self._base + self.offset + len(self._head))  # head bytes came from raw
        return n


class _Decoder:
    """What the stream needs of a decompressor once its input has been fed."""

    d: Any

    @property
    def eof(self) -> bool:
        return self.d.eof

    @property
    def unused(self) -> bytes:
        return self.d.unused_data


class _ZlibDecoder(_Decoder):
    def __init__(self, module: Any) -> None:
        self.d = module.decompressobj(31)
        self.tail = b""

    def needs_input(self) -> bool:
        return not self.tail

    def feed(self, data: bytes) -> None:
        self.tail = data

    def decompress(self, max_len: int) -> bytes:
        out = self.d.decompress(self.tail, max_len)
        self.tail = self.d.unconsumed_tail
        return out


class _BufferingDecoder(_Decoder):
    """bz2 / lz4.frame decompressors, which keep unconsumed input internally."""

    def __init__(self, factory: Any) -> None:
        self.d = factory()
        self.pending = b""

    def needs_input(self) -> bool:
        return self.d.needs_input and not self.pending

    def feed(self, data: bytes) -> None:
        self.pending = data

    def decompress(self, max_len: int) -> bytes:
        out = self.d.decompress(self.pending, max_length=max_len)
        self.pending = b""
        return out


def _lz4_factory() -> Any:
    import lz4.frame

    return lz4.frame.LZ4FrameDecompressor()


class InflateSource:
    """A compressed file inflated on the fly; concatenated members/frames are followed.

    `truncated` is set when the compressed stream ends without its end marker, `garbage`
    (a byte count) when non-compressed bytes follow it, `damaged` (a reason) when the
    decompressor rejects the data (a bad CRC32/ISIZE trailer, corrupt deflate blocks) and
    `refused` when the file inflates beyond ``max_ratio`` times its compressed size (a
    bomb). Reading stops at the first of the last two, so the work stays bounded.
    """

    def __init__(
        self,
        raw: IO[bytes],
        head: bytes,
        kind: str,
        max_ratio: float | None = MAX_INFLATION_RATIO,
    ) -> None:
        self._raw, self._kind = raw, kind
        self._max_ratio = max_ratio
        self.damaged: str | None = None
        self.refused: str | None = None
        self._compressed = len(head)
        self._produced = 0
        self._dec: Any = self._new_decoder()
        if head:
            self._dec.feed(head)
        self.offset = self._produced
        self._buf = b""
        self._pos = 0
        self.truncated = False
        self.garbage: int | None = None

    def _new_decoder(self) -> Any:
        if self._kind == "gzip":
            return _ZlibDecoder(_fast_zlib)
        if self._kind == "lz4":
            return _BufferingDecoder(_lz4_factory)
        return _BufferingDecoder(bz2.BZ2Decompressor)

    def _raw_read(self) -> bytes:
        data = self._raw.read(RAW_BLOCK)
        self._compressed += len(data)
        return data

    def _produce(self, max_len: int) -> bytes:
        while self._dec is not None:
            if self._dec.eof:
                rest = self._dec.unused or self._raw_read()
                if not rest:
                    self._dec = None
                    break
                if not rest.startswith(MAGIC[self._kind][: len(rest)]):
                    self.garbage = len(rest)
                    while data := self._raw_read():
                        self.garbage += len(data)
                    self._dec = None
                    break
                self._dec = self._new_decoder()
                self._dec.feed(rest)
                continue
            if self._dec.needs_input():
                data = self._raw_read()
                if not data:
                    self.truncated = True
                    self._dec = None
                    break
                self._dec.feed(data)
            try:  # a few MiB per call: a bomb is caught before it fills memory
                out = self._dec.decompress(min(max_len, SKIP_OUT))
            except _DECOMPRESS_ERRORS as error:
                self.damaged = (
                    f"{self._kind} stream damaged at or before compressed byte "
                    f"{self._compressed} (inflated byte {self._produced}): {error}"
                )
                self._dec = None
                break
            if out:
                self._produced += len(out)
                self._check_ratio()
                return out
        return b""

    def _check_ratio(self) -> None:
        """Refuse (stop inflating) once the output outgrows any real run."""
        limit = max(INFLATION_FLOOR, (self._max_ratio or 0) * self._compressed)
        if self._max_ratio is not None and self._produced > limit:
            self.refused = (
                f"refused: inflates beyond {self._max_ratio:g}x its compressed size "
                f"({self._produced} bytes from the first {self._compressed}); "
                "a decompression bomb, not a run"
            )
            self._dec = None

    def read(self, n: int) -> bytes:
        avail = len(self._buf) - self._pos
        if avail >= n:
            data = self._buf[self._pos : self._pos + n]
            self._pos += n
            self.offset += n
            return data
        pieces = [self._buf[self._pos :]] if avail else []
        need = n - avail
        self._buf, self._pos = b"", 0
        while need > 0:
            out = self._produce(max(need, MIN_OUT))
            if not out:
                break
            if len(out) > need:
                pieces.append(out[:need])
                self._buf, self._pos = out, need
                need = 0
            else:
                pieces.append(out)
                need -= len(out)
        data = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        self.offset += len(data)
        return data

    def skip(self, n: int) -> int:
        avail = len(self._buf) - self._pos
        if avail >= n:
            self._pos += n
            self.offset += n
            return n
        done = avail
        self._buf, self._pos = b"", 0
        while done < n:
            out = self._produce(min(n - done, SKIP_OUT) if n - done > MIN_OUT else MIN_OUT)
            if not out:
                break
            if done + len(out) > n:
                self._buf, self._pos = out, n - done
                done = n
            else:
                done += len(out)
        self.offset += done
        return done

    @property
    def compressed_offset(self) -> int:
        return self._compressed
