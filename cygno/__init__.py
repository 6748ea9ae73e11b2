"""cygno-pipeline: the CYGNO data platform."""

__version__ = "0.1.0"
