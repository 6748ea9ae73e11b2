"""MIDAS run files, read and written exactly as docs/midas.md describes (CYGNO's flavour).

with MidasFile("run01234.mid.gz") as f:        # path or open binary file (s3fs too)
    for event in f:                             # like midas.file_reader
        if event.is_picture:
            frame = event.picture()             # 2D uint16 view on the event bytes
"""

from .banks import Bank
from .dgh0 import DigitizerBoard, decode_dgh0, encode_dgh0, waveforms
from .errors import Defect, MidasFormatError
from .format import TID_DTYPES, TID_NAMES
from .odb import dump_odb, parse_odb
from .reader import Event, EventIndex, MidasFile
from .scan import EventHeader
from .validate import ValidationReport, validate
from .writer import MidasWriter

__all__ = [
    "TID_DTYPES",
    "TID_NAMES",
    "Bank",
    "Defect",
    "DigitizerBoard",
    "Event",
    "EventHeader",
    "EventIndex",
    "MidasFile",
    "MidasFormatError",
    "MidasWriter",
    "ValidationReport",
    "decode_dgh0",
    "dump_odb",
    "encode_dgh0",
    "parse_odb",
    "validate",
    "waveforms",
]
