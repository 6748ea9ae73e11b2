"""The ``cygno`` command line: one Typer app, one module per command group."""

from __future__ import annotations

import importlib

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


def main() -> None:
    from cygno.cli.errors import reported

    _register()
    raise SystemExit(reported(lambda: app(standalone_mode=False)))
