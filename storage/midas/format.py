"""Constants and encode/decode of the MIDAS structures (docs/midas.md is the specification)."""

from __future__ import annotations

import struct

import numpy as np

EVENT_HEADER = struct.Struct("<HHIII")  # id, trigger mask, serial, time stamp, data size
BANK_HEADER = struct.Struct("<II")  # all_bank_size, flags
BANK16 = struct.Struct("<4sHH")
BANK32 = struct.Struct("<4sII")
BANK32A = struct.Struct("<4sIII")

BOR_ID, EOR_ID, MESSAGE_ID = 0x8000, 0x8001, 0x8002
MIDAS_MAGIC = 0x494D  # "MI" trigger mask of BOR/EOR
PICTURE_ID, CAMERA_STATUS_ID = 1, 7

FLAG_VERSION, FLAG_32BIT, FLAG_64BIT_ALIGNED = 0x01, 0x10, 0x20
FORMAT_FLAGS = {"16": 0x01, "32": 0x11, "32a": 0x31}

# TID -> numpy dtype. char/string/array/struct/key/link are bytes; bool is MIDAS's 4-byte bool.
TID_DTYPES: dict[int, np.dtype] = {
    1: np.dtype("u1"),
    2: np.dtype("i1"),
    3: np.dtype("S1"),
    4: np.dtype("<u2"),
    5: np.dtype("<i2"),
    6: np.dtype("<u4"),
    7: np.dtype("<i4"),
    8: np.dtype("<u4"),
    9: np.dtype("<f4"),
    10: np.dtype("<f8"),
    11: np.dtype("<u4"),
    12: np.dtype("S1"),
    13: np.dtype("u1"),
    14: np.dtype("u1"),
    15: np.dtype("u1"),
    16: np.dtype("u1"),
    17: np.dtype("<i8"),
    18: np.dtype("<u8"),
}
TID_ITEMSIZE = {tid: dt.itemsize for tid, dt in TID_DTYPES.items()}
TID_NAMES = {
    1: "UINT8",
    2: "INT8",
    3: "CHAR",
    4: "UINT16",
    5: "INT16",
    6: "UINT32",
    7: "INT32",
    8: "BOOL",
    9: "FLOAT",
    10: "DOUBLE",
    11: "BITFIELD",
    12: "STRING",
    13: "ARRAY",
    14: "STRUCT",
    15: "KEY",
    16: "LINK",
    17: "INT64",
    18: "UINT64",
}
# Default TID of an array by its dtype kind/size (writer side).
_DTYPE_TID = {
    ("u", 1): 1,
    ("i", 1): 2,
    ("S", 1): 3,
    ("u", 2): 4,
    ("i", 2): 5,
    ("u", 4): 6,
    ("i", 4): 7,
    ("b", 1): 8,
    ("f", 4): 9,
    ("f", 8): 10,
    ("i", 8): 17,
    ("u", 8): 18,
}


def tid_for(dtype: np.dtype) -> int:
    """The TID a numpy dtype is written as."""
    try:
        return _DTYPE_TID[(dtype.kind, dtype.itemsize)]
    except KeyError:
        raise ValueError(f"no MIDAS type id for dtype {dtype}") from None


def padded(size: int) -> int:
    """Bank payloads are zero-padded to a multiple of 8 bytes."""
    return (size + 7) & ~7


def valid_bank_name(name: bytes) -> bool:
    return len(name) == 4 and all(0x20 < c < 0x7F for c in name)


def bank_header_struct(flags: int) -> struct.Struct:
    if flags & FLAG_64BIT_ALIGNED:
        return BANK32A
    if flags & FLAG_32BIT:
        return BANK32
    return BANK16


def is_fragment(event_id: int) -> bool:
    return (event_id & 0xF000) in (0xC000, 0xD000)
