"""MidasWriter: run files as CYGNO's logger writes them (BOR, data events, EOR; gz/lz4/bz2)."""

from __future__ import annotations

import bz2
import os
from collections.abc import Sequence
from typing import IO, Any

import numpy as np

from .format import (
    BANK16,
    BANK32,
    BANK32A,
    BANK_HEADER,
    BOR_ID,
    EOR_ID,
    EVENT_HEADER,
    FORMAT_FLAGS,
    MIDAS_MAGIC,
    TID_DTYPES,
    padded,
    tid_for,
    valid_bank_name,
)
from .odb import dump_odb

_ZEROS = bytes(8)
BankSpec = tuple[str, np.ndarray] | tuple[str, np.ndarray, int]


def _open_compressor(fileobj: IO[bytes], compression: str | None, level: int | None) -> IO[bytes]:
    if compression is None:
        return fileobj
    if compression == "gzip":
        try:  # isal writes standard gzip several times faster than zlib
            from isal.igzip import IGzipFile

            return IGzipFile(fileobj=fileobj, mode="wb", compresslevel=level or 2, mtime=0)
        except ImportError:  # pragma: no cover
            import gzip

            return gzip.GzipFile(fileobj=fileobj, mode="wb", compresslevel=level or 6, mtime=0)
    if compression == "lz4":
        import lz4.frame

        return lz4.frame.LZ4FrameFile(fileobj, mode="wb", compression_level=level or 0)
    if compression == "bz2":
        return bz2.BZ2File(fileobj, mode="wb", compresslevel=level or 9)
    raise ValueError(f"compression must be 'gzip', 'lz4', 'bz2' or None, not {compression!r}")


def _as_bank_array(array: np.ndarray, tid: int | None) -> tuple[np.ndarray, int]:
    array = np.asarray(array)
    if array.dtype.kind == "b":
        array = array.astype("<u4")
        tid = tid or 8
    tid = tid or tid_for(array.dtype)
    if tid not in TID_DTYPES:
        raise ValueError(f"unknown MIDAS type id {tid}")
    want = TID_DTYPES[tid]
    if array.dtype.kind == "S" and array.dtype.itemsize != 1:
        array = np.frombuffer(array.tobytes(), dtype="S1")
    if array.dtype.itemsize != want.itemsize:
        raise ValueError(f"array dtype {array.dtype} does not fit type id {tid} ({want})")
    if array.dtype.byteorder == ">" or (array.dtype.byteorder == "=" and want.byteorder == "<"):
        array = array.astype(array.dtype.newbyteorder("<"), copy=False)
    return np.ascontiguousarray(array), tid


class MidasWriter:
    """Write a MIDAS run file to a binary file object (or a path).

    Banks are `(name, array)` or `(name, array, tid)`; the TID defaults from the dtype.
    Compressed output goes through isal (gzip), lz4.frame or bz2; closing the writer
    finishes the compressed stream but leaves a caller's file object open.
    """

    def __init__(
        self,
        fileobj: IO[bytes] | str | os.PathLike,
        compression: str | None = "gzip",
        level: int | None = None,
    ) -> None:
        self._owned = isinstance(fileobj, str | os.PathLike)
        self._target: IO[bytes] = open(fileobj, "wb") if self._owned else fileobj  # noqa: SIM115
        self._out = _open_compressor(self._target, compression, level)
        self.events = 0

    def __enter__(self) -> MidasWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._out is not self._target:
            self._out.close()
        if self._owned:
            self._target.close()
        else:
            self._target.flush()

    def _write_event(self, event_id: int, mask: int, serial: int, time_stamp: int, parts, size):
        self._out.write(EVENT_HEADER.pack(event_id, mask, serial, time_stamp & 0xFFFFFFFF, size))
        for part in parts:
            self._out.write(part)
        self.events += 1

    def write_bor(self, run_number: int, odb: dict[str, Any], time_stamp: int, fmt: str = "json"):
        payload = dump_odb(odb, fmt)
        self._write_event(BOR_ID, MIDAS_MAGIC, run_number, time_stamp, [payload], len(payload))

    def write_eor(self, run_number: int, odb: dict[str, Any], time_stamp: int, fmt: str = "json"):
        payload = dump_odb(odb, fmt)
        self._write_event(EOR_ID, MIDAS_MAGIC, run_number, time_stamp, [payload], len(payload))

    def write_event(
        self,
        event_id: int,
        serial: int,
        time_stamp: int,
        banks: Sequence[BankSpec],
        bank_format: str = "32",
        trigger_mask: int = 0,
    ) -> None:
        """One data event: bank header, then each bank padded to 8 bytes."""
        if bank_format not in FORMAT_FLAGS:
            raise ValueError(f"bank_format must be '16', '32' or '32a', not {bank_format!r}")
        header = {"16": BANK16, "32": BANK32, "32a": BANK32A}[bank_format]
        parts: list[Any] = [b""]
        seen: set[bytes] = set()
        total = 0
        for spec in banks:
            name, array, tid = spec if len(spec) == 3 else (*spec, None)
            raw_name = name.encode("ascii", errors="replace") if isinstance(name, str) else name
            if not valid_bank_name(raw_name):
                raise ValueError(f"bank name {name!r} is not 4 printable ASCII characters")
            if raw_name in seen:
                raise ValueError(f"duplicate bank name {name!r}")
            seen.add(raw_name)
            data, tid = _as_bank_array(array, tid)
            nbytes = data.nbytes
            if bank_format == "16" and (nbytes > 0xFFFF or tid > 0xFFFF):
                raise ValueError(f"bank {name!r}: {nbytes} bytes do not fit a 16-bit bank")
            fields = (raw_name, tid, nbytes) + ((0,) if bank_format == "32a" else ())
            parts.append(header.pack(*fields))
            if nbytes:
                parts.append(memoryview(data).cast("B"))
            pad = padded(nbytes) - nbytes
            if pad:
                parts.append(_ZEROS[:pad])
            total += header.size + padded(nbytes)
        parts[0] = BANK_HEADER.pack(total, FORMAT_FLAGS[bank_format])
        self._write_event(event_id, trigger_mask, serial, time_stamp, parts, total + 8)
