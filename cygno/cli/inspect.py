"""``cygno inspect FILE``: what a MIDAS run file holds and everything wrong with it.

One validate() pass (checksums, events, banks, ODB keys, all defects) with a progress bar,
then optionally the first N events' headers and banks.
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from cygno.cli import app
from cygno.cli.errors import require_midas

MAX_DEFECTS_SHOWN = 50
ODB_PATHS = (
    ("Configurations", "Exposure"),
    ("Configurations", "DRS4Correction"),
    ("Configurations", "DigitizerOffset"),
    ("Configurations", "DigitizerSamples"),
    ("Configurations", "SamplingFrequency"),
    ("Equipment", "Trigger", "Settings", "nCamera"),
)


def _open(target: str, stack: ExitStack) -> tuple[Any, int | None]:
    """A binary file for a local path, a URL inside the configured object store (its
    endpoint and credentials apply) or any other fsspec URL; and its size when known."""
    if "://" in target:
        from cygno.resources import store_for
        from cygno.settings import get_settings

        store = store_for(get_settings())
        try:
            key = store.key_of(target)
        except ValueError:
            import fsspec

            opened = stack.enter_context(fsspec.open(target, "rb"))
            return opened, getattr(opened, "size", None)
        return stack.enter_context(store.open(key, "rb")), store.size(key)
    if not os.path.exists(target):
        raise typer.BadParameter(f"no such file: {target}")
    return stack.enter_context(open(target, "rb")), os.path.getsize(target)


def _lookup(odb: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = odb
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _summary(report: Any) -> Table:
    from cygno.storage.midas.format import TID_NAMES

    table = Table(title=f"{report.path}", show_header=False)
    table.add_row("compression", report.compression or "none")
    table.add_row("stored size", f"{report.size:,} bytes")
    table.add_row("adler32 / md5", f"{report.adler32} / {report.md5}")
    table.add_row("run number", str(report.run_number))
    table.add_row("events / pictures", f"{report.events} / {report.pictures}")
    ids = ", ".join(
        f"0x{k:04x}×{v}" if k >= 0x8000 else f"{k}×{v}" for k, v in sorted(report.event_ids.items())
    )
    table.add_row("event ids", ids)
    table.add_row("first picture (TIME)", str(report.first_time))
    banks = Table("bank", "type", "TID", "max bytes")
    for name, (tid, size) in sorted(report.banks.items()):
        banks.add_row(name, TID_NAMES.get(tid, "?"), str(tid), f"{size:,}")
    table.add_row("banks", banks)
    table.add_row("ODB top-level keys", ", ".join(report.odb_keys) or "—")
    return table


def _events_table(handle: Any, count: int, console: Console) -> None:
    from cygno.storage.midas import MidasFile, MidasFormatError
    from cygno.storage.midas.format import TID_NAMES

    table = Table("offset", "id", "mask", "serial", "time stamp", "size", "banks")
    try:
        with MidasFile(handle) as midas:
            for n, event in enumerate(midas):
                if n >= count:
                    break
                h = event.header
                banks = ", ".join(
                    f"{b.name}:{TID_NAMES.get(b.type, '?')}[{b.data.size}]"
                    for b in event.banks.values()
                )
                if event.is_bor or event.is_eor:
                    banks = f"ODB dump, {len(event.payload):,} bytes"
                table.add_row(
                    str(event.offset), f"0x{h.event_id:04x}", f"0x{h.trigger_mask:04x}",
                    str(h.serial_number), str(h.time_stamp), f"{h.data_size:,}", banks,
                )  # fmt: skip
    except MidasFormatError as error:
        console.print(f"[red]stopped: {error}[/red]")
    console.print(table)


@app.command()
def inspect(
    file: str = typer.Argument(..., help="MIDAS run file: local path or fsspec URL."),
    events: int = typer.Option(0, "--events", "-n", min=0, help="Also list the first N events."),
) -> None:
    """Events, banks (types, sizes), ODB keys, checksums and every defect of a MIDAS file."""
    from cygno.storage.midas import validate

    console = Console()
    with ExitStack() as stack:
        handle, size = _open(file, stack)
        require_midas(handle, file)
        columns = (TextColumn("validating"), BarColumn(), DownloadColumn(), TimeRemainingColumn())
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task("validate", total=size)
            report = validate(handle, progress=lambda done: progress.update(task, completed=done))
        console.print(_summary(report))
        if report.odb_keys:
            with ExitStack() as odb_stack:
                odb = _bor_odb(file, odb_stack)
            if odb is not None:
                odb_table = Table("ODB key", "value")
                for path in ODB_PATHS:
                    odb_table.add_row("/" + "/".join(path), repr(_lookup(odb, path)))
                console.print(odb_table)
        if events:
            handle2, _ = _open(file, stack)
            _events_table(handle2, events, console)
    if report.defects:
        shown = report.defects[:MAX_DEFECTS_SHOWN]
        title = f"{report.defect_count} defects" + (
            f" (the first {len(shown)} shown)" if report.defect_count > len(shown) else ""
        )
        defects = Table("byte offset", "serial", "defect", title=title)
        for defect in shown:
            defects.add_row(str(defect.offset), str(defect.serial), defect.reason)
        console.print(defects)
        if report.refused:
            console.print(f"[red]{report.refused}[/red]")
        raise typer.Exit(code=1)
    console.print("[green]no defects[/green]")


def _bor_odb(file: str, stack: ExitStack) -> dict[str, Any] | None:
    from cygno.storage.midas import MidasFile, MidasFormatError

    handle, _ = _open(file, stack)
    try:
        return MidasFile(handle).bor_odb
    except (MidasFormatError, ValueError):
        return None
