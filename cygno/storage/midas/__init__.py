"""MIDAS run files, read and written exactly as MIDAS.md describes (CYGNO's flavour)."""

from .errors import Defect, MidasFormatError
from .writer import MidasWriter

__all__ = ["Defect", "MidasFormatError", "MidasWriter"]
