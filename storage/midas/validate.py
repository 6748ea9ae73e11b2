"""validate(): one streaming pass over the stored bytes that lists every defect.

The same bytes feed adler32/md5 (ChecksumReader) and the decompressor, so ingest gets the
checksums, size, event and picture counts and the defect list without reading twice.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..checksum import ChecksumReader
from .banks import BankDefect, walk_banks
from .errors import Defect, DefectLog, MidasFormatError
from .format import BOR_ID, EOR_ID, EVENT_HEADER, MESSAGE_ID, is_fragment
from .odb import OdbError, parse_odb
from .scan import MAX_EVENT_SIZE, Scanner, name_of, open_binary
from .stream import InflateSource, PlainSource, detect_compression


@dataclass
class ValidationReport:
    path: str | None
    compression: str | None
    defects: list[Defect]
    events: int
    pictures: int
    run_number: int | None
    adler32: str
    md5: str | None
    size: int
    event_ids: dict[int, int] = field(default_factory=dict)
    banks: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (type, max size)
    odb_keys: list[str] = field(default_factory=list)
    first_time: int | None = None
    defect_count: int = 0  # all defects found; ``defects`` keeps the first of them
    refused: str | None = None  # why reading stopped early (a bomb, mostly garbage)

    @property
    def ok(self) -> bool:
        return not self.defects

    @property
    def more_defects(self) -> int:
        """Defects found beyond those kept in ``defects``."""
        return self.defect_count - len(self.defects)

    @property
    def reason(self) -> str | None:
        """One line saying why the file is not usable (None when it is)."""
        if self.refused:
            return self.refused
        if not self.defects:
            return None
        more = f" (+{self.defect_count - 1} more defects)" if self.defect_count > 1 else ""
        return f"{self.defects[0]}{more}"


def validate(
    source: Any, *, max_event_size: int = MAX_EVENT_SIZE, progress: Any = None
) -> ValidationReport:
    """Walk the whole file once; collect all defects plus checksums of the stored bytes.

    `progress(stored_bytes_read)` is called after each event when given.
    """
    path = name_of(source)
    raw, owned = open_binary(source)
    try:
        reader = ChecksumReader(raw, md5=True)
        head = reader.read(4)
        kind = detect_compression(head)
        stream = (
            PlainSource(reader, head, 0, None)
            if kind is None
            else InflateSource(reader, head, kind)
        )
        defects = DefectLog()
        scanner = Scanner(stream, path, collect=defects, max_event_size=max_event_size)
        ids: Counter[int] = Counter()
        banks: dict[str, tuple[int, int]] = {}
        first_time = None
        for offset, header, payload, picture in scanner:
            ids[header.event_id] += 1
            if progress is not None:
                progress(reader.nbytes)
            if header.event_id in (BOR_ID, EOR_ID, MESSAGE_ID) or is_fragment(header.event_id):
                continue
            serial = header.serial_number

            def sink(d: BankDefect, offset=offset, serial=serial, eid=header.event_id) -> None:
                where = offset + EVENT_HEADER.size + d.offset
                defects.append(Defect(where, serial, d.reason, eid))

            _, infos = walk_banks(payload or b"", header.data_size, sink)
            for info in infos:
                size = max(info.size, banks.get(info.name, (0, 0))[1])
                banks[info.name] = (info.type, size)
                if picture == 0 and info.name == "TIME" and info.size >= 4:
                    first_time = int.from_bytes(
                        payload[info.data_offset : info.data_offset + 4], "little"
                    )
        reader.drain()
        odb_keys: list[str] = []
        if scanner.bor_payload is not None:
            with contextlib.suppress(OdbError):
                odb_keys = sorted(parse_odb(scanner.bor_payload))
        return ValidationReport(
            path=path,
            compression=kind,
            defects=list(defects),
            defect_count=defects.total,
            refused=scanner.refused or getattr(stream, "refused", None),
            events=scanner.events,
            pictures=scanner.pictures,
            run_number=scanner.run_number,
            adler32=reader.adler32,
            md5=reader.md5,
            size=reader.nbytes,
            event_ids=dict(ids),
            banks=banks,
            odb_keys=odb_keys,
            first_time=first_time,
        )
    finally:
        if owned:
            raw.close()


__all__ = ["MidasFormatError", "ValidationReport", "validate"]
