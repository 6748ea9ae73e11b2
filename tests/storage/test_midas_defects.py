# ruff: noqa: E501  (the defect table reads best one case per line)
"""One test per defect class: the strict reader raises MidasFormatError naming file, byte
offset, event serial and reason; validate() reports the same defect (and all others)."""

from __future__ import annotations

import gzip
import struct

import pytest

from cygno.storage.midas import MidasFile, MidasFormatError, validate

BOR_ODB = b'{"a": 1}\x00'  # BOR = 16 + 9 = 25 bytes, so the first data event is at 25


def header(event_id, serial, size, mask=0, ts=0):
    return struct.pack("<HHIII", event_id, mask, serial, ts, size)


def bor(run=12, payload=BOR_ODB, mask=0x494D):
    return header(0x8000, run, len(payload), mask) + payload


def eor(run=12):
    return header(0x8001, run, 3, 0x494D) + b"{}\x00"


def bank32(name, tid, data, size=None, pad=True):
    size = len(data) if size is None else size
    body = data + (bytes(-len(data) % 8) if pad else b"")
    return struct.pack("<4sII", name, tid, size) + body


def event(serial, banks, flags=0x11, event_id=1, all_bank_size=None, data_size=None):
    body = b"".join(banks)
    abs_ = len(body) if all_bank_size is None else all_bank_size
    size = len(body) + 8 if data_size is None else data_size
    return header(event_id, serial, size) + struct.pack("<II", abs_, flags) + body


GOOD_BANK = bank32(b"CAM0", 4, b"\x01\x00\x02\x00")  # 12 + 8 bytes
EV1 = event(1, [GOOD_BANK])  # 16 + 8 + 20 = 44 bytes, at offset 25
AFTER_EV1 = 25 + len(EV1)
BANK0 = 25 + 16 + 8  # where the first bank header of EV1-like events sits

CASES = {
    "truncated header": (bor() + EV1 + header(1, 2, 8)[:10], AFTER_EV1, None, "truncated event header"),
    "truncated payload": (bor() + EV1[:30], 25, 1, "truncated payload: data_size 28 but only 14"),
    "bank size mismatch": (
        bor() + event(1, [GOOD_BANK], all_bank_size=12, data_size=28) + eor(),
        41, 1, "all_bank_size+8 = 20 differs from data_size 28",
    ),
    "bank past its event": (
        bor() + event(1, [bank32(b"CAM0", 4, b"\x01\x00\x02\x00", size=400)]) + eor(),
        BANK0, 1, "bank 'CAM0' of 400 bytes runs past the end of its event",
    ),
    "padding past its event": (
        bor() + event(1, [bank32(b"CAM0", 1, b"\x01\x02\x03", pad=False)]) + eor(),
        BANK0 + 12 + 8, 1, "padding runs past the end",
    ),
    "size not a multiple": (
        bor() + event(1, [bank32(b"CAM0", 4, b"\x01\x00\x02")]) + eor(),
        BANK0, 1, "size 3 is not a multiple of its element size 2",
    ),
    "unknown TID": (
        bor() + event(1, [bank32(b"CAM0", 19, b"\x01")]) + eor(), BANK0, 1, "unknown type id 19"
    ),
    "TID zero": (bor() + event(1, [bank32(b"CAM0", 0, b"\x01")]) + eor(), BANK0, 1, "unknown type id 0"),
    "non-printable name": (
        bor() + event(1, [bank32(b"CA\x01M", 1, b"\x01")]) + eor(), BANK0, 1, "non-printable bank name"
    ),
    "duplicate name": (
        bor() + event(1, [GOOD_BANK, GOOD_BANK]) + eor(), BANK0 + 20, 1, "duplicate bank name 'CAM0'"
    ),
    "unknown bank flags": (
        bor() + event(1, [GOOD_BANK], flags=0x02) + eor(), 25 + 16 + 4, 1, "unknown bank format flags 0x2"
    ),
    "huge data_size": (
        bor() + header(1, 1, 0xFFFFFFF0) + b"\x00" * 64, 25, 1, "exceeds the maximum event size"
    ),
    "garbage after the last event": (
        bor() + EV1 + eor() + b"garbage!", AFTER_EV1 + 19, 12, "garbage after the last event: 8 bytes"
    ),
    "long garbage after the last event": (
        bor() + EV1 + eor() + b"\xff" * 40, AFTER_EV1 + 19, 12, "garbage after the last event: 40 bytes"
    ),
    "BOR not first": (EV1 + bor() + eor(), 0, 1, "begin-of-run event is not first"),
    "second BOR": (bor() + bor() + eor(), 25, 12, "begin-of-run event is not first"),
    "EOR not last": (
        bor() + eor() + EV1 + eor(), 25 + 19, 1, "end-of-run event is not the last"
    ),
    "EOR missing": (bor() + EV1, AFTER_EV1, 1, "end-of-run event missing"),
    "BOR run vs file name": (bor(run=13) + eor(run=13), 0, 13, "disagrees with the file name (run 12)"),
    "EOR run vs BOR run": (bor() + EV1 + eor(run=99), AFTER_EV1, 99, "run number 99 in the end-of-run"),
    "fragment id": (
        bor() + event(5, [GOOD_BANK], event_id=0xC001) + eor(), 25, 5, "fragmented event id 0xc001"
    ),
    "BOR trigger mask": (bor(mask=0x1234) + eor(), 0, 12, "trigger mask 0x1234"),
    "unparsable ODB": (bor(payload=b"not an odb\x00") + eor(), 0, 12, "neither JSON nor XML"),
    "empty file": (b"", 0, None, "empty file"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
def test_defect_raises_and_is_reported(tmp_path, case):
    data, offset, serial, reason = CASES[case]
    path = tmp_path / "run00012.mid"
    path.write_bytes(data)
    with pytest.raises(MidasFormatError) as caught, MidasFile(path) as f:
        list(f)
    error = caught.value
    assert (error.path, error.offset, error.serial) == (str(path), offset, serial)
    assert reason in error.reason
    text = str(error)
    assert str(path) in text and f"byte offset {offset}" in text
    assert f"event serial {serial if serial is not None else '?'}" in text
    assert reason in text

    report = validate(path)
    assert not report.ok
    assert any(d.offset == offset and reason in d.reason for d in report.defects), report.defects
    assert report.size == len(data)


def test_validate_reports_every_defect_in_one_pass(tmp_path):
    data = (
        bor()
        + event(1, [GOOD_BANK, GOOD_BANK])
        + event(2, [bank32(b"CAM0", 19, b"\x01")])
        + event(3, [bank32(b"CAM0", 4, b"\x01\x00\x02")])
        + event(4, [GOOD_BANK], event_id=0xD002)
    )
    path = tmp_path / "run00012.mid"
    path.write_bytes(data)
    report = validate(path)
    reasons = [d.reason for d in report.defects]
    assert len(reasons) == 5, reasons
    for expected in ["duplicate bank name", "unknown type id 19", "not a multiple", "fragmented"]:
        assert any(expected in r for r in reasons)
    assert "end-of-run event missing" in reasons[-1]
    assert [d.serial for d in report.defects] == [1, 2, 3, 4, 4]
    assert report.events == 5 and report.pictures == 3


def test_truncated_gzip_copy(tmp_path):
    good = bor() + EV1 * 1 + event(2, [GOOD_BANK] * 1) + eor()
    path = tmp_path / "run00012.mid.gz"
    path.write_bytes(gzip.compress(good)[:-12])
    with pytest.raises(MidasFormatError) as caught:
        list(MidasFile(path))
    assert str(path) in str(caught.value)
    reasons = [d.reason for d in validate(path).defects]
    assert any("compressed stream is truncated" in r for r in reasons), reasons


@pytest.mark.parametrize("junk", [b"trailing junk", bytes(13)])  # isal skips zeros silently
def test_garbage_after_the_gzip_stream(tmp_path, junk):
    good = bor() + EV1 + eor()
    path = tmp_path / "run00012.mid.gz"
    path.write_bytes(gzip.compress(good) + junk)
    with pytest.raises(
        MidasFormatError, match="13 bytes of garbage after the end of the compressed"
    ):
        list(MidasFile(path))
    report = validate(path)
    assert [d.reason for d in report.defects] == [
        "13 bytes of garbage after the end of the compressed stream"
    ]
    assert report.events == 3


def test_concatenated_gzip_members_are_one_stream(tmp_path):
    good = bor() + EV1 + eor()
    path = tmp_path / "run00012.mid.gz"
    path.write_bytes(gzip.compress(good[:30]) + gzip.compress(good[30:]))
    assert len(list(MidasFile(path))) == 3
    assert validate(path).ok


def test_error_pickles_and_defect_text_leaves_the_file_to_the_report(tmp_path):
    import pickle

    path = tmp_path / "run00012.mid"
    path.write_bytes(bor() + EV1)
    with pytest.raises(MidasFormatError) as caught:
        list(MidasFile(path))
    again = pickle.loads(pickle.dumps(caught.value))
    assert (again.path, again.offset, again.serial, again.reason) == (
        str(path), AFTER_EV1, 1, caught.value.reason,
    )  # fmt: skip
    assert str(again) == str(caught.value)
    defect = validate(path).defects[0]
    assert str(defect).startswith(f"byte offset {AFTER_EV1}, event serial 1: end-of-run")
    assert str(defect.error(str(path))) == str(caught.value)
