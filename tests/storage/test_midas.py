"""MIDAS reader/writer: round trips, CYGNO's quirks, ODB dumps, DGH0, index and chunks."""

from __future__ import annotations

import io
import pickle
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cygno.storage.midas import (
    TID_DTYPES,
    DigitizerBoard,
    MidasFile,
    MidasWriter,
    decode_dgh0,
    encode_dgh0,
    validate,
    waveforms,
)
from cygno.storage.midas.dgh0 import dgh0_layout

COMPRESSIONS = [None, "gzip", "lz4", "bz2"]
SUFFIX = {None: ".mid", "gzip": ".mid.gz", "lz4": ".mid.lz4", "bz2": ".mid.bz2"}
ODB = {
    "Configurations": {
        "Exposure": 0.3,
        "DRS4Correction": True,
        "DigitizerOffset": [0, -100, 250],
        "DigitizerSamples": 1024,
        "SamplingFrequency": 750,
    },
    "Equipment": {"Trigger": {"Settings": {"nCamera": 1}}},
    "Experiment": {"Name": "LIME <test> & co"},
}


def write_run(target, compression="gzip", n_pictures=6, side=64, run=12, seed=0, status=True):
    """A CYGNO-like run: BOR, pictures (32-bit banks) mixed with camera status (16-bit)."""
    rng = np.random.default_rng(seed)
    frames = []
    with MidasWriter(target, compression=compression) as w:
        w.write_bor(run, ODB, 1_700_000_000)
        for i in range(n_pictures):
            frame = (100 + rng.normal(0, 3, (side, side))).astype(np.uint16)
            frames.append(frame)
            banks = [("CAM0", frame), ("TSP0", np.array([17 + i, 500], np.uint32))]
            banks.append(("FID0", np.array([i], np.uint32)))
            if i == 0:
                banks.append(("TIME", np.array([1_700_000_123], np.uint32)))
            w.write_event(1, i, i * 250, banks, "32")
            if status and i % 2 == 0:
                w.write_event(7, i // 2, i * 250 + 5, [("TCAM", np.array([-10.5 - i]))], "16")
        w.write_eor(run, {"Runinfo": {"State": 1}}, 1_700_000_100)
    return frames


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_cygno_run_reads_back(tmp_path, compression):
    path = tmp_path / f"run00012{SUFFIX[compression]}"
    frames = write_run(path, compression)
    with MidasFile(path) as f:
        assert f.compression == compression
        events = list(f)
        assert f.run_number == 12
        assert f.bor_odb["Configurations"]["Exposure"] == 0.3
        assert f.eor_odb == {"Runinfo": {"State": 1}}
        assert f.first_time == 1_700_000_123
    assert events[0].is_bor and events[-1].is_eor
    pictures = [e for e in events if e.is_picture]
    status = [e for e in events if e.header.event_id == 7]
    assert [e.picture_number for e in pictures] == list(range(6))
    for event, frame in zip(pictures, frames, strict=True):
        np.testing.assert_array_equal(event.picture(), frame)
        assert event.bank_flags == 0x11
        assert event.banks["CAM0"].type == 4 and event.banks["CAM0"].data.dtype == np.uint16
    assert pictures[3].timestamp_unix(f.first_time) == pytest.approx(1_700_000_123.75)
    assert [e.banks["TCAM"].data[0] for e in status] == [-10.5, -12.5, -14.5]
    assert all(e.bank_flags == 0x01 and e.banks["TCAM"].type == 10 for e in status)
    assert events[0].header.trigger_mask == 0x494D and events[0].header.serial_number == 12
    report = validate(path)
    assert report.ok, report.defects
    assert (report.events, report.pictures, report.run_number) == (11, 6, 12)
    assert report.size == path.stat().st_size
    assert report.first_time == 1_700_000_123
    assert "Configurations" in report.odb_keys


@pytest.mark.parametrize("compression", [None, "gzip"])
def test_banks_are_zero_copy_read_only_views(tmp_path, compression):
    """2 MiB pictures: gzip reads them into one numpy buffer each (IsalGzipSource)."""
    path = tmp_path / f"run00012{SUFFIX[compression]}"
    [frame] = write_run(path, compression, n_pictures=1, side=1024)
    event = next(e for e in MidasFile(path) if e.is_picture)
    data = event.banks["CAM0"].data
    assert data.base is not None and not data.flags.owndata and not data.flags.writeable
    assert np.shares_memory(data, np.frombuffer(event.payload, np.uint8))
    assert np.array_equal(event.picture(), frame)


def test_writer_layout_matches_midas_md():
    out = io.BytesIO()
    with MidasWriter(out, compression=None) as w:
        w.write_bor(5, {"a": 1}, 7)
        w.write_event(1, 0, 0, [("ABCD", np.arange(3, dtype=np.uint8))], "32a")
        w.write_eor(5, {}, 8)
    raw = out.getvalue()
    assert raw[:4] == b"\x00\x80\x4d\x49"
    event_id, mask, serial, ts, size = struct.unpack_from("<HHIII", raw)
    assert (event_id, mask, serial, ts) == (0x8000, 0x494D, 5, 7)
    assert raw[16 + size - 1] == 0 and raw[16] == ord("{")
    pos = 16 + size
    _, _, _, _, data_size = struct.unpack_from("<HHIII", raw, pos)
    all_bank_size, flags = struct.unpack_from("<II", raw, pos + 16)
    assert flags == 0x31 and all_bank_size + 8 == data_size == 8 + 16 + 8
    name, tid, bank_size, _reserved = struct.unpack_from("<4sIII", raw, pos + 24)
    assert (name, tid, bank_size) == (b"ABCD", 1, 3)
    assert raw[pos + 40 : pos + 48] == b"\x00\x01\x02" + bytes(5)


# -- property tests -------------------------------------------------------------------------
NAME_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"
bank_strategy = st.tuples(
    st.text(NAME_CHARS, min_size=4, max_size=4),
    st.integers(1, 18),
    st.integers(0, 40),
    st.binary(min_size=0, max_size=8 * 40),
)
event_strategy = st.tuples(
    st.sampled_from(["16", "32", "32a"]),
    st.integers(0, 0x7FFF),
    st.integers(0, 2**32 - 1),
    st.lists(bank_strategy, max_size=5, unique_by=lambda b: b[0]),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(COMPRESSIONS), st.lists(event_strategy, max_size=6))
def test_round_trip_property(compression, events):
    written = []
    out = io.BytesIO()
    with MidasWriter(out, compression=compression) as w:
        w.write_bor(77, {"k": 1}, 0)
        for serial, (fmt, event_id, ts, banks) in enumerate(events):
            specs = []
            for name, tid, count, blob in banks:
                dtype = TID_DTYPES[tid]
                raw = (blob * (count * dtype.itemsize // max(len(blob), 1) + 1))[
                    : count * dtype.itemsize
                ]
                raw = raw.ljust(count * dtype.itemsize, b"\x5a")
                specs.append((name, np.frombuffer(raw, dtype=dtype), tid))
            event_id = max(event_id, 1) if event_id != 1 else 1
            w.write_event(event_id, serial, ts, specs, fmt)
            written.append((event_id, serial, ts, fmt, specs))
        w.write_eor(77, {}, 1)
    out.seek(0)
    read = list(MidasFile(out))
    assert len(read) == len(written) + 2
    for event, (event_id, serial, ts, fmt, specs) in zip(read[1:-1], written, strict=True):
        assert (event.header.event_id, event.header.serial_number) == (event_id, serial)
        assert event.header.time_stamp == ts
        assert event.bank_flags == {"16": 0x01, "32": 0x11, "32a": 0x31}[fmt]
        assert list(event.banks) == [s[0] for s in specs]
        for name, array, tid in specs:
            bank = event.banks[name]
            assert bank.type == tid and bank.data.dtype == TID_DTYPES[tid]
            assert bank.data.tobytes() == array.tobytes()
    out.seek(0)
    report = validate(out)
    assert report.ok, report.defects
    assert report.events == len(written) + 2


# -- ODB dumps ------------------------------------------------------------------------------
def raw_run(bor_payload: bytes, run=3) -> bytes:
    eor = b"{}\x00"
    return (
        struct.pack("<HHIII", 0x8000, 0x494D, run, 0, len(bor_payload))
        + bor_payload
        + struct.pack("<HHIII", 0x8001, 0x494D, run, 0, len(eor))
        + eor
    )


XML_ODB = b"""<?xml version="1.0" encoding="ISO-8859-1"?>
<!-- created by MHTTPD -->
<odb root="/" filename="run00003.xml">
  <dir name="Configurations">
    <key name="Exposure" type="DOUBLE">0.3</key>
    <key name="DRS4Correction" type="BOOL">y</key>
    <keyarray name="DigitizerOffset" type="INT" num_values="3">
      <value index="0">0</value>
      <value index="1">-100</value>
      <value index="2">250</value>
    </keyarray>
    <key name="DigitizerSamples" type="INT">1024</key>
    <key name="SamplingFrequency" type="DWORD">750</key>
  </dir>
  <dir name="Equipment"><dir name="Trigger"><dir name="Settings">
    <key name="nCamera" type="INT">1</key>
  </dir></dir></dir>
  <dir name="Experiment">
    <key name="Name" type="STRING" size="32">LIME &lt;test&gt; &amp; co</key>
  </dir>
</odb>
"""


@pytest.mark.parametrize("nul", [b"", b"\x00"])
@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_odb_json_and_xml_with_and_without_nul(tmp_path, fmt, nul):
    import json

    payload = (json.dumps(ODB).encode() if fmt == "json" else XML_ODB) + nul
    path = tmp_path / "run00003.mid"
    path.write_bytes(raw_run(payload))
    with MidasFile(path) as f:
        odb = f.bor_odb
        assert odb == ODB
        assert odb["Configurations"]["Exposure"] == 0.3
        assert odb["Equipment"]["Trigger"]["Settings"]["nCamera"] == 1
    assert validate(path).ok


def test_writer_xml_odb_reads_as_same_dict(tmp_path):
    path = tmp_path / "run00004.mid.gz"
    with MidasWriter(path) as w:
        w.write_bor(4, ODB, 0, fmt="xml")
        w.write_eor(4, ODB, 0, fmt="xml")
    with MidasFile(path) as f:
        assert f.bor_odb == ODB
        assert f.eor_odb == ODB
        assert next(iter(f)).payload.startswith(b"<?xml")


# -- digitizers -----------------------------------------------------------------------------
def boards():
    rng = np.random.default_rng(3)
    return [
        DigitizerBoard(
            1742, 1024, 2, 3, 12, 750, np.array([10, 20]), np.array([1, 2, 3]),
            np.array([4, 5, 6]), np.array([7, 8, 9]),
            waveforms=rng.integers(0, 4096, (3, 2, 1024)).astype(np.uint16),
        ),
        DigitizerBoard(
            1720, 40, 4, 3, 12, 250, np.arange(4), np.array([11, 12, 13]),
            np.array([14, 15, 16]),
            waveforms=rng.integers(0, 4096, (3, 4, 40)).astype(np.uint16),
        ),
    ]  # fmt: skip


@pytest.mark.parametrize("layout", [1, 2, 3])
def test_dgh0_three_layouts_decode_to_per_board_waveforms(tmp_path, layout):
    expected = boards()
    header = encode_dgh0(expected, layout=layout)
    assert dgh0_layout(header) == layout
    samples = np.concatenate([b.waveforms.ravel() for b in expected])
    path = tmp_path / "run00005.mid.lz4"
    with MidasWriter(path, compression="lz4") as w:
        w.write_bor(5, ODB, 0)
        w.write_event(1, 0, 0, [("DGH0", header), ("DIG0", samples)])
        w.write_eor(5, {}, 0)
    event = next(e for e in MidasFile(path) if e.is_picture)
    got = waveforms(event)
    assert len(got) == 2
    for board, want in zip(got, expected, strict=True):
        assert (board.model, board.nsamples, board.nchannels, board.ntriggers) == (
            want.model, want.nsamples, want.nchannels, want.ntriggers,
        )  # fmt: skip
        np.testing.assert_array_equal(board.ttt, want.ttt)
        np.testing.assert_array_equal(board.offsets, want.offsets)
        if layout == 1:
            assert board.ttt1 is None
        else:
            np.testing.assert_array_equal(board.ttt1, want.ttt1)
        assert (board.sic is not None) == (want.model == 1742)
        np.testing.assert_array_equal(board.waveforms, want.waveforms)
    assert len(decode_dgh0(event.banks["DGH0"])) == 2


# -- index and chunks -----------------------------------------------------------------------
@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_chunks_via_index_equal_sequential_reading(tmp_path, compression):
    path = tmp_path / f"run00012{SUFFIX[compression]}"
    write_run(path, compression, n_pictures=24, side=192)
    with MidasFile(path) as f:
        sequential = [e for e in f if e.is_picture]
    with MidasFile(path) as f:
        index = f.index(checkpoint_every=128 << 10)
        assert index.n_pictures == 24 and len(index) == 24 + 12 + 2
        assert index.event_ids[0] == 0x8000 and index.event_ids[-1] == 0x8001
        if compression == "gzip":
            assert index.gzip_access is not None and index.gzip_access.n_points >= 2
        for start, stop in [(0, 5), (5, 13), (13, 24), (20, 100), (7, 8)]:
            chunk = list(f.read_events(start, stop))
            want = sequential[start:stop]
            assert [e.picture_number for e in chunk] == [e.picture_number for e in want]
            assert [e.offset for e in chunk] == [e.offset for e in want]
            for a, b in zip(chunk, want, strict=True):
                assert a.payload == b.payload
        assert list(f.read_events(30, 40)) == []


@pytest.mark.parametrize("compression", ["gzip", None])
def test_chunk_without_index_and_with_a_pickled_index(tmp_path, compression):
    path = tmp_path / f"run00012{SUFFIX[compression]}"
    frames = write_run(path, compression, n_pictures=8)
    with MidasFile(path) as f:
        chunk = list(f.read_events(3, 6))
        index = f.index()
    assert [e.picture_number for e in chunk] == [3, 4, 5]
    np.testing.assert_array_equal(chunk[0].picture(), frames[3])
    shipped = pickle.loads(pickle.dumps(index))
    assert np.array_equal(shipped.offsets, index.offsets)
    if compression == "gzip":
        assert shipped.gzip_access == index.gzip_access is not None
    with MidasFile(path, index=shipped) as f:
        again = list(f.read_events(3, 6))
        assert f.eor_odb == {"Runinfo": {"State": 1}}
        assert f.first_time == 1_700_000_123
    assert [e.payload for e in again] == [e.payload for e in chunk]


def test_open_file_objects_including_unseekable(tmp_path):
    path = tmp_path / "run00012.mid.gz"
    write_run(path, "gzip", n_pictures=3)

    class Pipe(io.RawIOBase):
        def __init__(self, data):
            self._inner = io.BytesIO(data)

        def readable(self):
            return True

        def readinto(self, b):
            return self._inner.readinto(b)

    with MidasFile(Pipe(path.read_bytes())) as f:
        assert sum(e.is_picture for e in f) == 3
    report = validate(Pipe(path.read_bytes()))
    assert report.ok and report.pictures == 3 and report.size == path.stat().st_size


def test_reads_s3fs_file_objects(tmp_path, s3_server):
    import s3fs

    path = tmp_path / "run00012.mid.gz"
    frames = write_run(path, "gzip", n_pictures=5)
    bucket = s3_server.new_bucket()
    fs = s3fs.S3FileSystem(**s3_server.storage_options())
    fs.put(str(path), f"{bucket}/raw/LNGS/run00012.mid.gz")
    with fs.open(f"{bucket}/raw/LNGS/run00012.mid.gz", "rb") as raw, MidasFile(raw) as f:
        assert f.run_number == 12
        chunk = list(f.read_events(2, 4))
        np.testing.assert_array_equal(chunk[1].picture(), frames[3])
    with fs.open(f"{bucket}/raw/LNGS/run00012.mid.gz", "rb") as raw:
        report = validate(raw)
    assert report.ok and report.pictures == 5
    assert report.path.endswith("run00012.mid.gz")


@pytest.mark.parametrize(
    "banks, fmt, message",
    [
        ([("CA M", np.zeros(2, np.uint8))], "32", "not 4 printable ASCII"),
        ([("CAM", np.zeros(2, np.uint8))], "32", "not 4 printable ASCII"),
        ([("CAM0", np.zeros(2, np.uint8)), ("CAM0", np.zeros(1, np.uint8))], "32", "duplicate"),
        ([("CAM0", np.zeros(40000, np.uint16))], "16", "do not fit a 16-bit bank"),
        ([("CAM0", np.zeros(2, np.complex64))], "32", "no MIDAS type id"),
        ([("CAM0", np.zeros(2, np.uint16), 10)], "32", "does not fit type id 10"),
        ([("CAM0", np.zeros(2, np.uint16))], "64", "bank_format"),
    ],
)
def test_writer_refuses_what_midas_cannot_hold(banks, fmt, message):
    with MidasWriter(io.BytesIO(), compression=None) as w, pytest.raises(ValueError, match=message):
        w.write_event(1, 0, 0, banks, fmt)


def test_writer_converts_big_endian_and_bool():
    out = io.BytesIO()
    with MidasWriter(out, compression=None) as w:
        w.write_bor(1, {}, 0)
        w.write_event(
            1, 0, 0, [("BIGE", np.arange(4, dtype=">u4")), ("FLAG", np.array([1, 0], bool))]
        )
        w.write_eor(1, {}, 0)
    out.seek(0)
    event = list(MidasFile(out))[1]
    assert event.banks["BIGE"].data.tolist() == [0, 1, 2, 3]
    assert event.banks["FLAG"].type == 8 and event.banks["FLAG"].data.tolist() == [1, 0]


def test_index_fields_and_event_at(tmp_path):
    path = tmp_path / "run00012.mid.gz"
    write_run(path, "gzip", n_pictures=4)
    with MidasFile(path) as f:
        index = f.index()
        assert index.run_number == 12 and index.first_time == 1_700_000_123
        pictures = index.picture_numbers >= 0
        assert index.serials[pictures].tolist() == [0, 1, 2, 3]
        assert index.time_stamps[pictures].tolist() == [0, 250, 500, 750]
        assert np.all(np.diff(index.offsets) == index.sizes[:-1] + 16)
        event = f.event_at(index.picture_offset(2))
        assert event.picture_number == 2 and event.header.serial_number == 2
        assert f.event_at(0).is_bor


@pytest.mark.parametrize("use_index", [False, True])
def test_non_square_picture_takes_its_shape_from_the_bor_odb(tmp_path, use_index):
    path = tmp_path / "run00021.mid.gz"
    odb = {"Equipment": {"Camera": {"Settings": {"Height": 48, "Width": 96}}}}
    frame = np.arange(48 * 96, dtype=np.uint16).reshape(48, 96)
    with MidasWriter(path) as w:
        w.write_bor(21, odb, 0)
        for i in range(3):
            w.write_event(1, i, 0, [("CAM0", frame + i)])
        w.write_eor(21, {}, 0)
    with MidasFile(path) as f:
        assert next(e for e in f if e.is_picture).picture().shape == (48, 96)
    with MidasFile(path) as f:
        if use_index:
            f.index()
        event = next(iter(f.read_events(2, 3)))
        np.testing.assert_array_equal(event.picture(), frame + 2)
        assert event.picture(shape=(96, 48)).shape == (96, 48)


def test_index_without_checkpoints_matches(tmp_path):
    path = tmp_path / "run00012.mid.gz"
    write_run(path, "gzip", n_pictures=5)
    with MidasFile(path) as f:
        with_checkpoints = f.index()
    with MidasFile(path) as f:
        plain = f.index(checkpoint_every=0)
        assert plain.gzip_access is None
        assert [e.picture_number for e in f.read_events(3, 5)] == [3, 4]
    assert np.array_equal(plain.offsets, with_checkpoints.offsets)
    assert np.array_equal(plain.picture_numbers, with_checkpoints.picture_numbers)
