"""Streaming checksums: adler32 (what Rucio/FTS/CNAF compare) and md5 (what the DAQ logbook stores).

Both are computed while bytes flow through a wrapper, so a file is never read twice just to
checksum it. adler32 is always rendered as an 8-digit, zero-padded, lower-case hex string:
a dropped leading zero once made a tape transfer fail.
"""

from __future__ import annotations

import hashlib
import os
import zlib
from dataclasses import dataclass
from typing import IO, Any

try:  # isal's adler32 is several times faster than zlib's on large buffers
    from isal.isal_zlib import adler32 as _adler32
except ImportError:  # pragma: no cover - isal is pinned, but stay usable without it
    _adler32 = zlib.adler32

BLOCK = 4 << 20


def format_adler32(value: int) -> str:
    """Render an adler32 value the one accepted way: 8 lower-case hex digits."""
    return f"{value & 0xFFFFFFFF:08x}"


class Adler32:
    """Running adler32 (starts at 1, as zlib.adler32 does)."""

    def __init__(self) -> None:
        self.value = 1

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self.value = _adler32(data, self.value)

    def hexdigest(self) -> str:
        return format_adler32(self.value)


class Md5:
    """Running md5, same interface as Adler32."""

    def __init__(self) -> None:
        self._hash = hashlib.md5(usedforsecurity=False)

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self._hash.update(data)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


@dataclass(frozen=True)
class Checksums:
    adler32: str
    md5: str | None
    size: int


class _Summing:
    """Shared state of the reader and writer wrappers."""

    def __init__(self, fileobj: IO[bytes], md5: bool) -> None:
        self.fileobj = fileobj
        self._adler = Adler32()
        self._md5 = Md5() if md5 else None
        self.nbytes = 0

    def _account(self, data: bytes | bytearray | memoryview) -> None:
        if data:
            self._adler.update(data)
            if self._md5 is not None:
                self._md5.update(data)
            self.nbytes += len(data)

    @property
    def adler32(self) -> str:
        return self._adler.hexdigest()

    @property
    def md5(self) -> str | None:
        return None if self._md5 is None else self._md5.hexdigest()

    def checksums(self) -> Checksums:
        return Checksums(self.adler32, self.md5, self.nbytes)

    @property
    def name(self) -> Any:
        return getattr(self.fileobj, "name", None)

    def close(self) -> None:
        self.fileobj.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ChecksumReader(_Summing):
    """Read-through wrapper: every byte handed out is added to adler32 (and md5).

    Forward-only on purpose: a seek would make the sums describe something other than the file.
    """

    def __init__(self, fileobj: IO[bytes], md5: bool = True) -> None:
        super().__init__(fileobj, md5)

    def read(self, size: int = -1) -> bytes:
        data = self.fileobj.read(size)
        self._account(data)
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:
        n = self.fileobj.readinto(buffer)
        if n:
            self._account(memoryview(buffer)[:n])
        return n or 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        return self.nbytes

    def drain(self, block: int = BLOCK) -> None:
        """Read to the end so the sums cover the whole file."""
        while self.read(block):
            pass


class ChecksumWriter(_Summing):
    """Write-through wrapper: every byte written is added to adler32 (and md5)."""

    def __init__(self, fileobj: IO[bytes], md5: bool = True) -> None:
        super().__init__(fileobj, md5)

    def write(self, data: bytes | bytearray | memoryview) -> int:
        n = self.fileobj.write(data)
        written = len(data) if n is None else n
        self._account(memoryview(data).cast("B")[:written] if written != len(data) else data)
        return written

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        self.fileobj.flush()

    def tell(self) -> int:
        return self.nbytes


def checksums_of(fileobj_or_path: IO[bytes] | str | os.PathLike, md5: bool = True) -> Checksums:
    """adler32, md5 and size of a whole file in one streaming read."""
    if isinstance(fileobj_or_path, str | os.PathLike):
        with open(fileobj_or_path, "rb") as f:
            return checksums_of(f, md5)
    reader = ChecksumReader(fileobj_or_path, md5=md5)
    reader.drain()
    return reader.checksums()


def adler32_of(fileobj_or_path: IO[bytes] | str | os.PathLike) -> str:
    """adler32 alone (skips md5, which costs more than adler32)."""
    return checksums_of(fileobj_or_path, md5=False).adler32
