"""cygno-pipeline: the CYGNO data platform."""

from cygno.storage.lineage import code_version

__version__ = code_version()  # one source of truth: the distribution's metadata
