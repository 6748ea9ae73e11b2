"""One walk over the event stream that checks the run's framing and structure.

Shared by reading (first defect raises), indexing (payloads skipped) and validate() (all
defects collected). Checks: truncated header/payload, implausible sizes, BOR first and
unique, EOR last and present, BOR/EOR trigger mask, run numbers of BOR, EOR and file name,
fragment ids, garbage after the last event, compressed-stream truncation or trailing bytes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from .errors import MAX_DEFECTS_READ, Defect, MidasFormatError
from .format import BOR_ID, EOR_ID, EVENT_HEADER, MESSAGE_ID, MIDAS_MAGIC, PICTURE_ID, is_fragment
from .odb import OdbError, parse_odb
from .stream import Buffer

#: Ten times a picture of the largest camera: a header claiming more is corrupt, and
#: reading it would hold that much memory.
MAX_EVENT_SIZE = 256 << 20


@dataclass(frozen=True)
class EventHeader:
    event_id: int
    trigger_mask: int
    serial_number: int
    time_stamp: int
    data_size: int


def name_of(source: Any) -> str | None:
    """A printable name for a path or file object (s3fs files have .path, local ones .name)."""
    if isinstance(source, str | os.PathLike):
        return os.fspath(source)
    for attribute in ("full_name", "path", "name"):
        value = getattr(source, attribute, None)
        if isinstance(value, str):
            return value
    return None


def run_from_name(name: str | None) -> int | None:
    """The run number of a DAQ file name (`run01234.mid[.gz]`), None for other names."""
    if not name:
        return None
    match = re.search(r"(?:^|[^A-Za-z])run(\d+)\.mid(?:\.|$)", os.path.basename(name))
    return int(match.group(1)) if match else None


class _Stop(Exception):
    """A fatal defect in collecting mode: the event stream cannot be followed further."""


class Scanner:
    """Walks events from a byte source.

    `want_payload(header, picture_number)` says whether a data event's payload is read
    (else it is skipped: seeked or inflated and dropped). `collect` is None for strict
    mode (raise on first defect) or a list that receives every Defect.
    """

    def __init__(
        self,
        source: Any,
        path: str | None,
        *,
        collect: list[Defect] | None = None,
        from_start: bool = True,
        first_picture: int = 0,
        want_payload: Callable[[EventHeader, int], bool] = lambda h, p: True,
        max_event_size: int = MAX_EVENT_SIZE,
    ) -> None:
        self.source, self.path, self.collect = source, path, collect
        self.from_start = from_start
        self.want_payload = want_payload
        self.max_event_size = max_event_size
        self.pictures = first_picture
        self.events = 0
        self.run_number: int | None = None
        self.bor_payload: Buffer | None = None
        self.eor_payload: Buffer | None = None
        self.eor_seen = False
        self.file_run = run_from_name(path)
        self.refused: str | None = None
        self._cut_short = False

    def defect(self, offset: int | None, serial: int | None, reason: str, *, event_id=None):
        if self.collect is None:
            raise MidasFormatError(self.path, offset, serial, reason)
        self.collect.append(Defect(offset, serial, reason, event_id))

    def fatal(self, offset: int | None, serial: int | None, reason: str) -> None:
        if not self._stream_stopped():  # else the stream's own reason explains the cut
            self.defect(offset, serial, reason)
        raise _Stop

    def _stream_stopped(self) -> str | None:
        """Why the byte source stopped early (refused or damaged), None if it did not."""
        return (
            self.refused
            or getattr(self.source, "refused", None)
            or getattr(self.source, "damaged", None)
        )

    def _too_many_defects(self, offset: int) -> bool:
        """Stop reading a file that is mostly defects (bounded work for any input)."""
        found = getattr(self.collect, "total", len(self.collect or ()))
        if found < MAX_DEFECTS_READ:
            return False
        self.refused = (
            f"refused: {found} defects by byte offset {offset}; not read further "
            "(garbage or not a MIDAS run)"
        )
        return True

    def __iter__(self) -> Iterator[tuple[int, EventHeader, Buffer | None, int]]:
        """Yields (offset, header, payload or None, picture number or -1)."""
        try:
            yield from self._walk()
        except _Stop:  # the stream ended or went astray: still say why, if the container knows
            stopped = self._stream_stopped()
            self._compressed_end_checks()
            if self._cut_short and self.from_start and not self.eor_seen and not stopped:
                self.defect(
                    self.source.offset, None, "end-of-run event missing: the run was cut short"
                )

    def _compressed_end_checks(self) -> None:
        if stopped := self._stream_stopped():
            self.defect(self.source.offset, None, stopped)
            return
        if getattr(self.source, "truncated", False):
            self.defect(self.source.offset, None, "compressed stream is truncated (no end marker)")
        garbage = getattr(self.source, "garbage", None)
        if garbage:
            reason = f"{garbage} bytes of garbage after the end of the compressed stream"
            self.defect(self.source.offset, None, reason)

    def _walk(self) -> Iterator[tuple[int, EventHeader, Buffer | None, int]]:
        source = self.source
        first = self.from_start
        last_serial: int | None = None
        while True:
            offset = source.offset
            if self.collect is not None and self._too_many_defects(offset):
                raise _Stop
            raw_header = source.read(EVENT_HEADER.size)
            if not raw_header:
                break
            if len(raw_header) < EVENT_HEADER.size:
                self._cut_short = not self.eor_seen
                if self.eor_seen:
                    self.fatal(offset, last_serial, self._garbage_reason(len(raw_header)))
                self.fatal(
                    offset,
                    None,
                    f"truncated event header: {len(raw_header)} of 16 bytes "
                    f"(after event serial {last_serial})",
                )
            header = EventHeader(*EVENT_HEADER.unpack(raw_header))
            serial = header.serial_number
            if header.data_size > self.max_event_size:
                if self.eor_seen:
                    self.fatal(offset, last_serial, self._garbage_reason(None))
                self.fatal(
                    offset,
                    serial,
                    f"data_size {header.data_size} exceeds the maximum event size "
                    f"{self.max_event_size} (corrupt header)",
                )
            if self.eor_seen:
                if not self._plausible(header):
                    self.fatal(offset, last_serial, self._garbage_reason(None))
                self.defect(
                    offset,
                    serial,
                    f"end-of-run event is not the last: event id 0x{header.event_id:04x} follows",
                )
                self.eor_seen = False
            picture = -1
            if header.event_id == PICTURE_ID:
                picture = self.pictures
                self.pictures += 1
            structural = header.event_id in (BOR_ID, EOR_ID, MESSAGE_ID)
            if structural or self.want_payload(header, picture):
                payload: Buffer | None = source.read(header.data_size)
                got = len(payload)
            else:
                payload = None
                got = source.skip(header.data_size)
            if got < header.data_size:
                self._cut_short = True
                self.fatal(
                    offset,
                    serial,
                    f"truncated payload: data_size {header.data_size} but only {got} bytes "
                    f"remain (event id 0x{header.event_id:04x})",
                )
            self._check_structure(offset, header, payload, first)
            first = False
            self.events += 1
            last_serial = serial
            yield offset, header, payload, picture
        self._compressed_end_checks()
        if self.from_start and not self.eor_seen and not self._stream_stopped():
            if self.events == 0:
                self.defect(0, None, "empty file: no events")
            else:
                self.defect(
                    source.offset,
                    last_serial,
                    "end-of-run event missing: the run or the copy was cut short",
                )

    def _garbage_reason(self, known: int | None) -> str:
        """`known` bytes were all that was left; None: a header was read, count the rest."""
        rest = known
        if rest is None:
            rest = EVENT_HEADER.size
            while (n := self.source.skip(SKIP_CHUNK)) > 0:
                rest += n
        return f"garbage after the last event: {rest} bytes follow the end-of-run event"

    @staticmethod
    def _plausible(header: EventHeader) -> bool:
        """Does data after EOR look like an event (vs. garbage)?"""
        if header.event_id in (BOR_ID, EOR_ID, MESSAGE_ID):
            return header.event_id == MESSAGE_ID or header.trigger_mask == MIDAS_MAGIC
        return header.event_id < 0x8000 and header.data_size >= 8

    def _check_structure(
        self, offset: int, header: EventHeader, payload: Buffer | None, first: bool
    ) -> None:
        event_id, serial = header.event_id, header.serial_number
        if first and event_id != BOR_ID:
            self.defect(
                offset, serial, f"begin-of-run event is not first (event id 0x{event_id:04x})"
            )
        if event_id in (BOR_ID, EOR_ID):
            kind = "begin" if event_id == BOR_ID else "end"
            if header.trigger_mask != MIDAS_MAGIC:
                self.defect(
                    offset,
                    serial,
                    f"{kind}-of-run event has trigger mask 0x{header.trigger_mask:04x}, "
                    f"not 0x{MIDAS_MAGIC:04x}",
                )
            try:
                parse_odb(payload or b"")
            except OdbError as error:
                self.defect(offset, serial, f"{kind}-of-run ODB dump: {error}")
        if event_id == BOR_ID:
            if offset != 0:
                self.defect(offset, serial, "begin-of-run event is not first")
            self.bor_payload = payload
            self.run_number = serial
            if self.file_run is not None and serial != self.file_run:
                self.defect(
                    offset,
                    serial,
                    f"run number {serial} in the begin-of-run event disagrees with the "
                    f"file name (run {self.file_run})",
                )
        elif event_id == EOR_ID:
            self.eor_payload = payload
            self.eor_seen = True
            expected = self.run_number if self.run_number is not None else self.file_run
            if expected is not None and serial != expected:
                self.defect(
                    offset,
                    serial,
                    f"run number {serial} in the end-of-run event disagrees with "
                    f"run {expected} (begin-of-run / file name)",
                )
        elif is_fragment(event_id):
            self.defect(offset, serial, f"fragmented event id 0x{event_id:04x}", event_id=event_id)


SKIP_CHUNK = 64 << 20


def open_binary(source: Any) -> tuple[IO[bytes], bool]:
    """(file object, whether we opened it) for a path or an already-open binary file."""
    if isinstance(source, str | os.PathLike):
        return open(source, "rb"), True
    if not hasattr(source, "read"):
        raise TypeError(f"expected a path or a binary file object, got {type(source).__name__}")
    return source, False
