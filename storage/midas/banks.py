"""Bank decoding: zero-copy numpy views on an event's payload, with every defect named."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .format import (
    BANK_HEADER,
    FLAG_32BIT,
    FLAG_64BIT_ALIGNED,
    FLAG_VERSION,
    TID_DTYPES,
    TID_ITEMSIZE,
    TID_NAMES,
    bank_header_struct,
    padded,
    valid_bank_name,
)


@dataclass
class Bank:
    """One data bank. `data` is a read-only view on the event's bytes (dtype from the TID)."""

    name: str
    type: int
    data: np.ndarray


@dataclass(frozen=True)
class BankInfo:
    """A bank as validate() sees it: name, type, size and where its data starts."""

    name: str
    type: int
    size: int
    data_offset: int


class BankDefect(Exception):
    """Raised inside decoding; `fatal` means the rest of the event cannot be trusted."""

    def __init__(self, reason: str, offset: int, fatal: bool) -> None:
        super().__init__(reason)
        self.reason, self.offset, self.fatal = reason, offset, fatal


DefectSink = Callable[[BankDefect], None]


def _raise(defect: BankDefect) -> None:
    raise defect


def walk_banks(
    payload: bytes | memoryview, data_size: int, on_defect: DefectSink = _raise
) -> tuple[int, list[BankInfo]]:
    """Check the bank structure of a data-event payload; returns (flags, banks).

    Offsets in defects are relative to the payload start (caller adds event offset + 16).
    Non-fatal defects are passed to `on_defect` and walking continues; fatal ones stop it.
    """
    if len(payload) < BANK_HEADER.size:
        on_defect(BankDefect(f"payload of {len(payload)} bytes has no bank header", 0, True))
        return 0, []
    all_bank_size, flags = BANK_HEADER.unpack_from(payload)
    if all_bank_size + BANK_HEADER.size != data_size:
        on_defect(
            BankDefect(
                f"all_bank_size+8 = {all_bank_size + 8} differs from data_size {data_size}",
                0,
                True,
            )
        )
        return flags, []
    if not flags & FLAG_VERSION or flags & ~(FLAG_VERSION | FLAG_32BIT | FLAG_64BIT_ALIGNED):
        on_defect(BankDefect(f"unknown bank format flags 0x{flags:x}", 4, True))
        return flags, []
    header = bank_header_struct(flags)
    end = BANK_HEADER.size + all_bank_size
    pos = BANK_HEADER.size
    banks: list[BankInfo] = []
    seen: set[str] = set()
    while pos < end:
        if pos + header.size > end:
            on_defect(BankDefect(f"bank header at {pos} runs past the end of its event", pos, True))
            break
        fields = header.unpack_from(payload, pos)
        raw_name, tid, size = fields[0], fields[1], fields[2]
        name = raw_name.decode("latin-1")
        start = pos + header.size
        if not valid_bank_name(raw_name):
            on_defect(BankDefect(f"non-printable bank name {raw_name!r}", pos, False))
        elif name in seen:
            on_defect(BankDefect(f"duplicate bank name {name!r}", pos, False))
        seen.add(name)
        if start + size > end:
            reason = f"bank {name!r} of {size} bytes runs past the end of its event"
            on_defect(BankDefect(reason, pos, True))
            break
        if tid not in TID_ITEMSIZE:
            on_defect(BankDefect(f"bank {name!r} has unknown type id {tid}", pos, False))
        elif size % TID_ITEMSIZE[tid]:
            reason = (
                f"bank {name!r} size {size} is not a multiple of its element size "
                f"{TID_ITEMSIZE[tid]} ({TID_NAMES[tid]})"
            )
            on_defect(BankDefect(reason, pos, False))
        else:
            banks.append(BankInfo(name, tid, size, start))
        pos = start + padded(size)
        if pos > end:
            reason = f"bank {name!r} padding runs past the end of its event"
            on_defect(BankDefect(reason, pos, True))
            break
    return flags, banks


def decode_banks(payload: bytes | memoryview, data_size: int) -> tuple[int, dict[str, Bank]]:
    """Strict decoding: the first defect raises BankDefect; arrays are views on `payload`."""
    flags, infos = walk_banks(payload, data_size)
    banks = {}
    for info in infos:
        dtype = TID_DTYPES[info.type]
        data = np.frombuffer(
            payload, dtype=dtype, count=info.size // dtype.itemsize, offset=info.data_offset
        )
        banks[info.name] = Bank(info.name, info.type, data)
    return flags, banks
