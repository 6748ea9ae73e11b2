"""Uncompressed byte streams over a stored MIDAS file: plain, gzip, LZ4 frame, bzip2.

The file is never loaded whole: compressed input is pulled in 1 MiB blocks and inflated with
a bounded output size. gzip is inflated with isal (several times faster than zlib); entering
a gzip stream mid-way is gzindex.py's job (indexed_gzip access points).

Two gzip sources: IsalGzipSource (a seekable file: isal's C reader inflates each read straight
into the bytes returned, the fast path for reading) and InflateSource (any file object, block
by block, naming every defect). The first hands over to the second at the first doubt, so both
report a damaged file the same way.
"""

from __future__ import annotations

import bz2
import zlib
from collections.abc import Callable
from typing import IO, Any

import numpy as np
from isal import isal_zlib as _fast_zlib

RAW_BLOCK = 1 << 20
MIN_OUT = 1 << 20
SKIP_OUT = 4 << 20
#: IsalGzipSource returns reads of at least this size as read-only memoryviews on numpy
#: buffers (see _fast_read), smaller ones as bytes.
LARGE_READ = 1 << 20

#: No real run inflates more than this (camera pictures are noise around a pedestal,
#: a few times smaller compressed); beyond it the input is refused as a bomb.
MAX_INFLATION_RATIO = 32
#: ... once at least this much has been inflated (small files have headers that shrink well).
INFLATION_FLOOR = 16 << 20
#: What any decompressor raises for damaged input (isal's IsalError, zlib.error, bz2 and
#: lz4's OSError/RuntimeError/EOFError).
_DECOMPRESS_ERRORS: tuple[type[BaseException], ...] = (
    zlib.error,
    _fast_zlib.error,
    OSError,
    EOFError,
    RuntimeError,
    ValueError,
)

#: What sources' read() returns: bytes, or (IsalGzipSource's large reads) a read-only
#: memoryview on a numpy buffer. Both give read-only np.frombuffer views.
Buffer = bytes | memoryview

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


class IsalGzipSource:
    """A seekable gzip file read by isal's C reader: each read inflates straight into the
    bytes object it returns (no block copies, no joins) and isal checks every member's
    CRC32 and ISIZE. About 15% less CPU than InflateSource on camera pictures.

    isal's reader raises without saying where, follows members and skips zero padding
    silently. So at the first doubt (an error, a read that would inflate beyond the bomb
    ratio, or an end that is not exactly the file's final trailer) the stream is handed over
    to an InflateSource re-inflated from byte 0 to the same offset, which names the defect
    (damaged, truncated, garbage, refused) with its offsets; only damaged or unusual files
    pay the second inflation. InflateSource alone may notice a damaged trailer one read
    earlier (its offset then differs by that read), and stops at zero padding between two
    members where isal reads on (the padding is then reported as garbage after the end).
    """

    def __init__(
        self, raw: IO[bytes], base: int, size: int, max_ratio: float = MAX_INFLATION_RATIO
    ) -> None:
        """`raw` must seek and have readinto(); the gzip stream spans `size` bytes from `base`."""
        self._raw, self._base, self._size, self._max_ratio = raw, base, size, max_ratio
        raw.seek(base)
        self._reader = _fast_zlib._GzipReader(raw, RAW_BLOCK)
        self._produced = 0
        self._ended = False
        self._scratch: memoryview | None = None
        self._careful: InflateSource | None = None

    @property
    def offset(self) -> int:
        return self._careful.offset if self._careful is not None else self._produced

    @property
    def truncated(self) -> bool:
        return self._careful is not None and self._careful.truncated

    @property
    def garbage(self) -> int | None:
        return self._careful.garbage if self._careful is not None else None

    @property
    def damaged(self) -> str | None:
        return self._careful.damaged if self._careful is not None else None

    @property
    def refused(self) -> str | None:
        return self._careful.refused if self._careful is not None else None

    def read(self, n: int) -> bytes | memoryview:
        if self._careful is None:
            done = self._fast(n, self._inflate)
            if done is not None:
                return done[0]
            self._hand_over()
        assert self._careful is not None
        return self._careful.read(n)

    def skip(self, n: int) -> int:
        """Inflated into one reused block, in SKIP_OUT steps (each checked like a read)."""
        done = 0
        while done < n and self._careful is None:
            step = min(n - done, SKIP_OUT)
            result = self._fast(step, self._discard)
            if result is None:
                self._hand_over()
                break
            done += result[1]
            if result[1] < step:
                return done
        if self._careful is not None:
            done += self._careful.skip(n - done)
        return done

    def _fast(self, n: int, inflate: Callable[[int], tuple[Any, int]]) -> tuple[Any, int] | None:
        """`inflate(n)` on isal: (its result, bytes inflated), fewer than `n` only at a clean
        end; None when InflateSource must take over."""
        if self._ended:
            return inflate(0)
        compressed = self._raw.tell() - self._base
        if self._produced + n > max(INFLATION_FLOOR, self._max_ratio * compressed):
            return None  # might be a bomb: InflateSource refuses it block by block
        try:
            result = inflate(n)
        except _DECOMPRESS_ERRORS:
            return None
        if result[1] < n:
            if not self._final_trailer_matches(self._produced + result[1]):
                return None
            self._ended = True
        self._produced += result[1]
        return result

    def _inflate(self, n: int) -> tuple[bytes | memoryview, int]:
        """A large read inflates into an uninitialised numpy buffer (no zero fill; numpy asks
        for huge pages, so fewer page faults) in RAW_BLOCK steps, so that isal's CRC32 runs
        over output still in cache: 5% less CPU on LIME pictures than one bytes object per
        event. It is returned as a read-only memoryview, so bank arrays on it stay read-only
        as views on bytes are."""
        if n < LARGE_READ:
            data = self._reader.read(n)
            return data, len(data)
        view = memoryview(np.empty(n, np.uint8))
        got = 0
        while got < n and (k := self._reader.readinto(view[got : got + RAW_BLOCK])):
            got += k
        return view[:got].toreadonly(), got

    def _discard(self, n: int) -> tuple[None, int]:
        if self._scratch is None:
            self._scratch = memoryview(bytearray(RAW_BLOCK))
        got = 0
        while got < n and (k := self._reader.readinto(self._scratch[: min(n - got, RAW_BLOCK)])):
            got += k
        return None, got

    def _final_trailer_matches(self, total: int) -> bool:
        """Does the file end with the ISIZE of everything inflated? Then nothing (no zero
        padding, no second member) follows the one member isal read. ISIZE 0 is ambiguous
        (zero padding ends in zeros too): InflateSource decides."""
        isize = total & 0xFFFFFFFF
        if isize == 0 or self._size < 4:
            return False
        self._raw.seek(self._base + self._size - 4)
        return int.from_bytes(self._raw.read(4), "little") == isize

    def _hand_over(self) -> None:
        """Re-inflate from byte 0 with InflateSource up to where isal's reads stopped."""
        self._raw.seek(self._base)
        careful = InflateSource(self._raw, b"", "gzip", self._max_ratio)
        careful.skip(self._produced)
        self._careful = careful
