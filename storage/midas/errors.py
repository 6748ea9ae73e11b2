"""The one exception every MIDAS defect raises, and the record validate() collects."""

from __future__ import annotations

from dataclasses import dataclass


def _where(offset: int | None, serial: int | None) -> str:
    serial_text = "?" if serial is None else str(serial)
    offset_text = "?" if offset is None else str(offset)
    return f"byte offset {offset_text}, event serial {serial_text}"


class MidasFormatError(ValueError):
    """A MIDAS file breaks the format; says which file, where, which event and what."""

    def __init__(self, path: str | None, offset: int | None, serial: int | None, reason: str):
        self.path, self.offset, self.serial, self.reason = path, offset, serial, reason
        super().__init__(f"{path or '<stream>'}: {_where(offset, serial)}: {reason}")

    def __reduce__(self):  # survives pickling (Prefect results, HTCondor job payloads)
        return (type(self), (self.path, self.offset, self.serial, self.reason))


@dataclass(frozen=True)
class Defect:
    """One defect found by validate(); offsets are in the uncompressed event stream.

    str() leaves the file out (the report knows it); `.error(path)` names it.
    """

    offset: int | None
    serial: int | None
    reason: str
    event_id: int | None = None

    def __str__(self) -> str:
        return f"{_where(self.offset, self.serial)}: {self.reason}"

    def error(self, path: str | None) -> MidasFormatError:
        return MidasFormatError(path, self.offset, self.serial, self.reason)


#: Defects a report keeps (the rest are counted), and after how many reading stops.
MAX_DEFECTS_KEPT = 100
MAX_DEFECTS_READ = 10_000


class DefectLog(list):
    """The defects of one file as found: the first ``keep`` kept, ``total`` counts all
    (a file of garbage must not become a gigabyte of reasons)."""

    def __init__(self, keep: int = MAX_DEFECTS_KEPT) -> None:
        super().__init__()
        self.keep = keep
        self.total = 0

    def append(self, defect: Defect) -> None:
        self.total += 1
        if len(self) < self.keep:
            super().append(defect)
