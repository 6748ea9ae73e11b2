"""cygno-pipeline: the CYGNO data platform."""

from typing import Any


def __getattr__(name: str) -> Any:
    """``__version__`` comes from the distribution's metadata (one source of truth), read
    on first use: every chunk job imports this package and need not pay for it."""
    if name == "__version__":
        from cygno.storage.lineage import code_version

        return code_version()
    raise AttributeError(f"module 'cygno' has no attribute {name!r}")
