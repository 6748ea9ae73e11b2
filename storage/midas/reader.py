"""MidasFile: iterate a run file like MIDAS's `midas.file_reader`, with numpy banks.

Reading is strict: the first defect raises MidasFormatError (use validate() to list all).
Random access goes through a one-pass EventIndex. Costs, per compression:
- plain: the index pass seeks from header to header (reads 16 bytes per event);
  a chunk read seeks straight to its first picture.
- gzip: the index pass reads the event table with isal, then indexed_gzip inflates the file
  once more (build_full_index, a bit faster than a gzip read) to record an access point
  every `checkpoint_every` uncompressed bytes (32 MiB: a 32 KiB window each, stored
  zlib-compressed; ~150 points for a 4.8 GB LIME run). Both ≈ 2.5 isal reads.
  The points are plain bytes in EventIndex.gzip_access, so they survive pickling to a job;
  a chunk read there checks they belong to the file, enters at the last point before its
  first picture and inflates at most ~32 MiB it does not need (zlib speed from there on,
  in 128 MiB reads: see gzindex.py).
  Without access points, a chunk read inflates with isal (but does not decode) everything
  before it. Sequential reading always uses isal: its C reader (IsalGzipSource) when the
  file object seeks, else isal's decompressor block by block (InflateSource).
- lz4 / bz2: no restartable state is exposed, so a chunk read inflates from the start,
  skipping (not decoding) earlier events; LZ4 inflates at several GB/s, so this is cheap.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .banks import Bank, BankDefect, decode_banks
from .errors import MidasFormatError
from .format import BOR_ID, EOR_ID, EVENT_HEADER, MESSAGE_ID, PICTURE_ID
from .gzindex import Fingerprint, GzipAccessIndex
from .odb import camera_shapes, parse_odb
from .scan import MAX_EVENT_SIZE, EventHeader, Scanner, name_of, open_binary
from .stream import Buffer, InflateSource, IsalGzipSource, PlainSource, detect_compression

CHECKPOINT_EVERY = 32 << 20
#: isal inflates this many times faster than zlib (which indexed_gzip uses): entering at
#: an access point pays only when it skips that much more than it reads.
ISAL_OVER_ZLIB = 2.5


@dataclass
class Event:
    """One event: header, banks (numpy views on `payload`) and its uncompressed offset."""

    header: EventHeader
    banks: dict[str, Bank]
    offset: int
    payload: Buffer = field(repr=False, default=b"")
    bank_flags: int = 0
    picture_number: int = -1
    camera_shapes: dict[int, tuple[int, int]] = field(default_factory=dict, repr=False)

    @property
    def is_bor(self) -> bool:
        return self.header.event_id == BOR_ID

    @property
    def is_eor(self) -> bool:
        return self.header.event_id == EOR_ID

    @property
    def is_picture(self) -> bool:
        return self.header.event_id == PICTURE_ID

    @property
    def odb(self) -> dict[str, Any]:
        """The ODB dump of a BOR/EOR event as a nested dict."""
        if not (self.is_bor or self.is_eor):
            raise ValueError("only begin/end-of-run events carry an ODB dump")
        return parse_odb(self.payload)

    def picture(self, camera: int = 0, shape: tuple[int, int] | None = None) -> np.ndarray:
        """The camera frame as a 2D uint16 view.

        Shape: as given, else the BOR ODB's camera Height×Width (when it fits the pixel
        count), else the square root of the pixel count (square frames only).
        """
        data = self.banks[f"CAM{camera}"].data
        if shape is None:
            shape = self.camera_shapes.get(camera)
            if shape is None or shape[0] * shape[1] != data.size:
                side = math.isqrt(data.size)
                if side * side != data.size:
                    raise ValueError(
                        f"CAM{camera} has {data.size} pixels: not square and no ODB shape"
                    )
                shape = (side, side)
        return data.reshape(shape)

    def timestamp_unix(self, first_time: float) -> float:
        """Absolute time: header time stamps of pictures are ms since the run's first picture."""
        return first_time + self.header.time_stamp / 1000.0


@dataclass
class EventIndex:
    """Where every event is: offsets in the uncompressed stream, ids, serials, pictures."""

    offsets: np.ndarray
    event_ids: np.ndarray
    serials: np.ndarray
    time_stamps: np.ndarray
    sizes: np.ndarray
    picture_numbers: np.ndarray  # -1 for events that are not pictures
    first_time: int | None = None
    run_number: int | None = None
    gzip_access: GzipAccessIndex | None = field(default=None, repr=False, compare=False)
    fingerprint: Fingerprint | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.offsets)

    @property
    def n_pictures(self) -> int:
        return int((self.picture_numbers >= 0).sum())

    def picture_offset(self, number: int) -> int:
        return int(self.offsets[np.flatnonzero(self.picture_numbers == number)[0]])


class MidasFile:
    """A MIDAS run file (path or open binary file object, e.g. from s3fs).

    Iterating yields Event objects; compression is detected from the magic bytes.
    """

    def __init__(
        self,
        source: Any,
        *,
        index: EventIndex | None = None,
        max_event_size: int = MAX_EVENT_SIZE,
    ) -> None:
        """`index`: an EventIndex built earlier (e.g. pickled to a worker): no index pass."""
        self.path = name_of(source)
        self._raw, self._owned = open_binary(source)
        self.max_event_size = max_event_size
        self._seekable = bool(getattr(self._raw, "seekable", lambda: False)())
        self._base = self._raw.tell() if self._seekable else 0
        self._size: int | None = None
        if self._seekable:
            self._size = self._raw.seek(0, 2) - self._base
            self._raw.seek(self._base)
        self._head = self._raw.read(4)
        self.compression = detect_compression(self._head)
        self._used = False
        self._index: EventIndex | None = index
        self._bor: Event | None = None
        self._eor_payload: Buffer | None = None
        self._first_time: int | None = None
        self._camera_shapes: dict[int, tuple[int, int]] = {}
        self._gz: Any = None  # the access-point reader, opened once per MidasFile
        self._verified = index is None  # a given index is matched to the file before use

    # -- plumbing -------------------------------------------------------------------------
    def __enter__(self) -> MidasFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._gz is not None:
            self._gz.close()
            self._gz = None
        if self._owned:
            self._raw.close()

    def _rewind(self, compressed_offset: int = 0) -> bytes:
        """Position the stored file; returns the magic bytes still to be fed (if at 0)."""
        if self._used:
            if not self._seekable:
                raise OSError(f"{self.path}: file object cannot seek; it can be read only once")
            self._raw.seek(self._base + compressed_offset)
            return b"" if compressed_offset else self._raw.read(len(self._head))
        self._used = True
        if compressed_offset:
            self._raw.seek(self._base + compressed_offset)
            return b""
        return self._head

    def _source(self):
        head = self._rewind()
        if self.compression is None:
            return PlainSource(self._raw, head, self._base, self._size)
        if self.compression == "gzip" and self._size is not None and hasattr(self._raw, "readinto"):
            return IsalGzipSource(self._raw, self._base, self._size)
        return InflateSource(self._raw, head, self.compression)

    def _can_enter_gzip(self) -> bool:
        """indexed_gzip needs to seek, with the gzip stream starting at byte 0."""
        return self.compression == "gzip" and self._seekable and self._base == 0

    def _scanner(self, source: Any, **kwargs: Any) -> Scanner:
        return Scanner(source, self.path, max_event_size=self.max_event_size, **kwargs)

    def _event(self, offset: int, header: EventHeader, payload: Buffer, picture: int) -> Event:
        flags, banks = 0, {}
        if header.event_id not in (BOR_ID, EOR_ID, MESSAGE_ID):
            try:
                flags, banks = decode_banks(payload, header.data_size)
            except BankDefect as defect:
                where = offset + EVENT_HEADER.size + defect.offset
                raise MidasFormatError(
                    self.path, where, header.serial_number, defect.reason
                ) from None
        return Event(header, banks, offset, payload, flags, picture, self._camera_shapes)

    # -- sequential reading -----------------------------------------------------------------
    def __iter__(self) -> Iterator[Event]:
        scanner = self._scanner(self._source())
        for offset, header, payload, picture in scanner:
            event = self._event(offset, header, payload or b"", picture)
            if event.is_bor:
                self._remember_bor(event)
            elif event.is_eor:
                self._eor_payload = event.payload
            elif picture == 0 and "TIME" in event.banks:
                self._first_time = int(event.banks["TIME"].data[0])
            yield event

    def _remember_bor(self, event: Event) -> None:
        """Keep the BOR and the camera shapes its ODB states (shared with every Event)."""
        self._bor = event
        with contextlib.suppress(ValueError):
            self._camera_shapes.update(camera_shapes(event.odb))

    @property
    def bor(self) -> Event:
        if self._bor is None:
            scanner = self._scanner(self._source())
            for offset, header, payload, picture in scanner:
                self._remember_bor(self._event(offset, header, payload or b"", picture))
                break
            if self._bor is None or not self._bor.is_bor:
                raise MidasFormatError(self.path, 0, None, "begin-of-run event is not first")
        return self._bor

    @property
    def bor_odb(self) -> dict[str, Any]:
        return self.bor.odb

    @property
    def run_number(self) -> int:
        return self.bor.header.serial_number

    @property
    def eor_odb(self) -> dict[str, Any]:
        """The end-of-run ODB; needs the end of the file (uses or builds the index)."""
        if self._eor_payload is None:
            index = self.index()
            if self._eor_payload is None and len(index) and index.event_ids[-1] == EOR_ID:
                self._eor_payload = self.event_at(int(index.offsets[-1])).payload
        if self._eor_payload is None:
            raise MidasFormatError(self.path, None, None, "end-of-run event missing")
        return parse_odb(self._eor_payload)

    def event_at(self, offset: int) -> Event:
        """Decode the one event starting at uncompressed `offset` (an index offset)."""
        source = self._source_at(offset)
        source.skip(offset - source.offset)
        scanner = self._scanner(source, from_start=False)
        for event_offset, header, payload, _ in scanner:
            picture = -1
            if self._index is not None:
                rows = np.flatnonzero(self._index.offsets == event_offset)
                picture = int(self._index.picture_numbers[rows[0]]) if rows.size else -1
            return self._event(event_offset, header, payload or b"", picture)
        raise MidasFormatError(self.path, offset, None, "no event at this offset")

    @property
    def first_time(self) -> int | None:
        """Unix seconds of the run's first picture (its TIME bank), or None if absent."""
        if self._first_time is None and self._index is None:
            self.index()
        if self._first_time is None and self._index is not None:
            return self._index.first_time
        return self._first_time

    # -- index and chunks ---------------------------------------------------------------------
    def index(self, checkpoint_every: int = CHECKPOINT_EVERY) -> EventIndex:
        """One pass over the file: headers only (payloads skipped, except the first picture's).

        For gzip, access points are recorded every `checkpoint_every` uncompressed bytes;
        `checkpoint_every=0` records none and inflates with isal instead (faster, when only
        the event table is wanted, or when the file object cannot seek).
        """
        if self._index is not None:
            return self._index
        source = self._source()
        scanner = self._scanner(source, want_payload=lambda header, picture: picture == 0)
        rows = []
        for offset, header, payload, picture in scanner:
            rows.append((offset, header.event_id, header.serial_number, header.time_stamp,
                         header.data_size, picture))  # fmt: skip
            if picture == 0 and payload is not None:
                event = self._event(offset, header, payload, picture)
                if "TIME" in event.banks:
                    self._first_time = int(event.banks["TIME"].data[0])
            elif header.event_id == BOR_ID and self._bor is None:
                self._remember_bor(self._event(offset, header, payload or b"", picture))
        self._eor_payload = scanner.eor_payload
        table = np.array(rows, dtype=np.int64).reshape(-1, 6)
        access = fingerprint = None
        if self._seekable and self._base == 0:
            fingerprint = Fingerprint.of(self._raw)
            if checkpoint_every and self.compression == "gzip":  # after the strict pass
                access = GzipAccessIndex.build(self._raw, self.path, checkpoint_every, fingerprint)
        self._index = EventIndex(
            offsets=table[:, 0],
            event_ids=table[:, 1].astype(np.uint16),
            serials=table[:, 2].astype(np.uint32),
            time_stamps=table[:, 3].astype(np.uint32),
            sizes=table[:, 4].astype(np.uint32),
            picture_numbers=table[:, 5],
            first_time=self._first_time,
            run_number=scanner.run_number,
            gzip_access=access,
            fingerprint=fingerprint,
        )
        return self._index

    def _verify_index(self) -> None:
        """An index made for another file would yield garbage: refuse it (once per file)."""
        fingerprint = self._index.fingerprint if self._index is not None else None
        if not self._verified and fingerprint is not None and self._seekable and not self._base:
            fingerprint.require(self._raw, self.path, "event index")
        self._verified = True

    def _source_at(self, offset: int, end: int | None = None) -> Any:
        """A source at (or before) uncompressed `offset`, as cheaply as the format allows;
        `end`: where reading will stop (None: the end of the file)."""
        self._verify_index()
        access = self._index.gzip_access if self._index is not None else None
        if access is None or not self._can_enter_gzip():
            return self._source()
        wanted = (access.uncompressed_size if end is None else end) - offset
        if offset + wanted < ISAL_OVER_ZLIB * (access.spacing // 2 + wanted):
            return self._source()  # near the start: isal from byte 0 is cheaper
        if self._gz is None:
            verified = access.fingerprint == self._index.fingerprint
            self._gz = access.open(self._raw, self.path, verified=verified)
        self._used = True
        self._gz.limit = end
        self._gz.seek(0)
        return PlainSource(self._gz, b"", 0, access.uncompressed_size)

    def read_events(self, start: int, stop: int | None = None) -> Iterator[Event]:
        """Picture events number start..stop-1 (0-based among event id 1), in file order.

        With an index the read starts at (or near) picture `start`; without one, earlier
        events are skipped by header, never decoded.
        """
        stop = stop if stop is not None else 1 << 62
        if start >= stop:
            return
        if self._index is not None:
            if self._bor is None:
                _ = self.bor  # camera shapes for Event.picture()
            rows = np.flatnonzero(self._index.picture_numbers == start)
            if rows.size == 0:
                return
            offset = int(self._index.offsets[rows[0]])
            last = np.flatnonzero(self._index.picture_numbers == stop - 1)
            after = int(last[0]) + 1 if last.size else len(self._index)
            end = int(self._index.offsets[after]) if after < len(self._index) else None
            source = self._source_at(offset, end)
            missing = offset - source.offset
            if source.skip(missing) != missing:
                raise MidasFormatError(self.path, offset, None, "file shorter than its index")
            scanner = self._scanner(source, from_start=False, first_picture=start)
        else:
            scanner = self._scanner(
                self._source(), want_payload=lambda header, picture: start <= picture < stop
            )
        for offset, header, payload, picture in scanner:
            if header.event_id == BOR_ID and self._bor is None:
                self._remember_bor(self._event(offset, header, payload or b"", picture))
            if picture >= stop:
                break
            if picture >= start:
                yield self._event(offset, header, payload or b"", picture)
                if picture == stop - 1:
                    break
