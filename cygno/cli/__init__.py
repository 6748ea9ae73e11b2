"""The ``cygno`` command line: one Typer app, one module per command group."""

from __future__ import annotations

import gc
import importlib
from collections.abc import Iterator
from contextlib import contextmanager

import typer

app = typer.Typer(
    name="cygno",
    help="CYGNO data platform: simulate, inspect, reconstruct and operate.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

# Each module registers its commands on `app` when imported.
_COMMAND_MODULES = ("simulate", "inspect", "catalog", "reco", "runner", "bridge", "stack", "warmup")


def _register() -> None:
    for name in _COMMAND_MODULES:
        importlib.import_module(f"cygno.cli.{name}")


_own_process: list[bool] = []  # set by main(): the process is this one command's


@contextmanager
def loading() -> Iterator[None]:
    """Imports (and numba's kernels) with the cyclic collector off, their objects frozen
    out of it afterwards: they live as long as the process, and a reconstruction loads
    ~150 000 of them, which the collector would otherwise traverse again and again while
    they are created and in each full collection of the interpreter's shutdown. Only in
    the command's own process: a command invoked in another (a test) leaves its GC be."""
    if not _own_process:
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


def main() -> None:
    _own_process.append(True)
    with loading():
        from cygno.cli.errors import reported

        _register()
    try:
        raise SystemExit(reported(lambda: app(standalone_mode=False)))
    finally:
        gc.freeze()  # no collection over every object at shutdown
