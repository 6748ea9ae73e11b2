"""Streaming adler32/md5 against known values, and the read/write wrappers."""

from __future__ import annotations

import hashlib
import io
import zlib

import pytest

from cygno.storage.checksum import (
    Adler32,
    ChecksumReader,
    Checksums,
    ChecksumWriter,
    Md5,
    adler32_of,
    checksums_of,
    format_adler32,
)


def test_adler32_of_empty_is_one_zero_padded():
    a = Adler32()
    a.update(b"")
    assert a.hexdigest() == "00000001"


@pytest.mark.parametrize(
    "data, expected",
    [
        (b"Wikipedia", "11e60398"),  # the textbook example
        (b"\x00", "00010001"),  # leading zeros must survive
        (b"a", "00620062"),
        (b"abc", "024d0127"),
    ],
)
def test_adler32_known_values(data, expected):
    a = Adler32()
    a.update(data)
    assert a.hexdigest() == expected
    assert len(a.hexdigest()) == 8


def test_format_is_lower_case_and_padded():
    assert format_adler32(0xABC) == "00000abc"
    assert format_adler32(0xDEADBEEF) == "deadbeef"


def test_streaming_equals_one_shot():
    data = bytes(range(256)) * 5000
    a, m = Adler32(), Md5()
    for i in range(0, len(data), 7777):
        a.update(memoryview(data)[i : i + 7777])
        m.update(data[i : i + 7777])
    assert a.hexdigest() == f"{zlib.adler32(data):08x}"
    assert m.hexdigest() == hashlib.md5(data).hexdigest()


def test_md5_of_empty():
    assert Md5().hexdigest() == "d41d8cd98f00b204e9800998ecf8427e"


def test_reader_sums_what_flows_through():
    data = b"cygno" * 100_001
    reader = ChecksumReader(io.BytesIO(data))
    got = bytearray()
    buf = bytearray(4096)
    while n := reader.readinto(buf):
        got += buf[:n]
        got += reader.read(1000)
    assert bytes(got) == data
    assert reader.nbytes == len(data)
    assert reader.adler32 == f"{zlib.adler32(data):08x}"
    assert reader.md5 == hashlib.md5(data).hexdigest()
    assert not reader.seekable()


def test_writer_sums_what_is_written(tmp_path):
    data = [b"x" * 1000, memoryview(b"yz" * 5000), bytearray(b"\x00" * 3)]
    with open(tmp_path / "f", "wb") as f:
        writer = ChecksumWriter(f)
        for part in data:
            writer.write(part)
        writer.flush()
        sums = writer.checksums()
    joined = b"".join(bytes(p) for p in data)
    assert (tmp_path / "f").read_bytes() == joined
    assert sums == Checksums(f"{zlib.adler32(joined):08x}", hashlib.md5(joined).hexdigest(), 11003)


def test_checksums_of_path_and_fileobj(tmp_path):
    path = tmp_path / "run00001.mid.gz"
    payload = b"\x1f\x8b" + bytes(range(200)) * 99
    path.write_bytes(payload)
    by_path = checksums_of(path)
    with open(path, "rb") as f:
        by_obj = checksums_of(f)
    assert by_path == by_obj
    assert by_path.size == len(payload)
    assert by_path.md5 == hashlib.md5(payload).hexdigest()
    assert adler32_of(str(path)) == f"{zlib.adler32(payload):08x}"
