"""How the ``cygno`` command reports a mistake: one line on stderr, a non-zero exit.

A wrong path, a file that is not MIDAS, an unknown configuration, a pedestal of another
shape — none of these is a bug, so none deserves a traceback. Commands raise
:class:`CliError` for what they check themselves; :func:`reported` turns it, and the
library's own clear errors (MIDAS format, files, configurations), into that one line.
"""

from __future__ import annotations

import bz2
import struct
import sys
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, NoReturn

import click

#: Exit status of a usage error (a bad option or argument), as click uses it.
USAGE = 2
#: Exit status of a mistake found while running (a bad file, an unknown run).
MISTAKE = 1


class CliError(Exception):
    """A mistake of the person at the keyboard, said in one line."""


def _fail(message: str, status: int) -> NoReturn:
    first_line = " ".join(message.split())
    print(f"cygno: {first_line}", file=sys.stderr)
    raise SystemExit(status)


def reported(run: Callable[[], object]) -> int:
    """Run the command line; mistakes become one line on stderr and an exit status."""
    try:
        result = run()
    except click.UsageError as error:
        _fail(error.format_message(), USAGE)
    except click.Abort:
        _fail("aborted", 130)
    except (CliError, _midas_format_error()) as error:
        _fail(str(error), MISTAKE)
    except OSError as error:  # no such file, a directory, no permission, unknown config
        where = f"{error.filename}: " if error.filename else ""
        _fail(f"{where}{error.strerror or error}", MISTAKE)
    return result if isinstance(result, int) else 0


def _midas_format_error() -> type[Exception]:
    """The MIDAS reader's error class, when a command loaded the reader (only then can it
    have been raised): a command that never reads MIDAS does not import it, nor numpy."""
    errors = sys.modules.get("cygno.storage.midas.errors")
    return errors.MidasFormatError if errors is not None else CliError


def replaced_on_success(output: Path) -> Path:
    """Where a command writes ``output`` first: renamed over it only when everything
    worked, so a failed command leaves nothing (and no half-written file) behind."""
    return output.with_name(f".{output.stem}.partial{output.suffix}")


def require_midas(handle: BinaryIO, name: str) -> None:
    """Refuse, in one line, a file that is not MIDAS at all (a text file, an image): a
    MIDAS run starts with its begin-of-run event (id 0x8000, mask "MI"), compressed or
    not. Damage further in is the reader's to report, with its offset and event."""
    from cygno.storage.midas.format import BOR_ID, MIDAS_MAGIC

    head = handle.read(HEAD_BYTES)
    handle.seek(0)
    try:
        first = _inflated_start(head)
    except (zlib.error, OSError, EOFError, RuntimeError, ValueError):
        raise CliError(f"{name}: not a MIDAS file (its compressed start is damaged)") from None
    if len(first) < 4 or struct.unpack("<HH", first[:4]) != (BOR_ID, MIDAS_MAGIC):
        raise CliError(f"{name}: not a MIDAS file (it does not start with a begin-of-run event)")


#: Enough of a file's start to inflate its first event header.
HEAD_BYTES = 1 << 16


def _inflated_start(head: bytes) -> bytes:
    from cygno.storage.midas.stream import detect_compression

    kind = detect_compression(head)
    if kind == "gzip":
        return zlib.decompressobj(31).decompress(head, 16)
    if kind == "bz2":
        return bz2.BZ2Decompressor().decompress(head, max_length=16)
    if kind == "lz4":
        import lz4.frame

        return lz4.frame.LZ4FrameDecompressor().decompress(head, max_length=16)
    return head


def existing_catalog(url: str) -> str:
    """The catalog URL, refused when it names an SQLite file that does not exist: run from
    another directory, the default ``./data/catalog.db`` would be created empty and shown."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    sqlite_file = parsed.database if parsed.get_backend_name() == "sqlite" else None
    if sqlite_file and sqlite_file != ":memory:" and not Path(sqlite_file).exists():
        raise CliError(
            f"no catalog at {sqlite_file}; set CYGNO_DATA_DIR or CYGNO_CATALOG_URL "
            "(or pass --url) to the platform's"
        )
    return url
