"""``cygno stack up|down|status`` and ``cygno demo``: the platform on one machine."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from cygno.cli import app
from cygno.cli.catalog import print_catalog

stack_app = typer.Typer(help="Start, inspect and stop the local stack.", no_args_is_help=True)
app.add_typer(stack_app, name="stack")
console = Console()


def _stack(s3: bool, prefect_database_url: str | None = None):
    from cygno.devtools.local_stack import LocalStack
    from cygno.settings import get_settings

    return LocalStack(get_settings(), with_s3=s3, prefect_database_url=prefect_database_url)


@stack_app.command("up")
def stack_up(
    s3: bool = typer.Option(False, "--s3", help="Use a local S3 endpoint instead of file://."),
    postgres: bool = typer.Option(
        False,
        "--postgres",
        help="The Prefect server on the local PostgreSQL (database cygno_prefect), "
        "not SQLite: for bursts of notifications.",
    ),
    postgres_url: str = typer.Option(
        "",
        "--postgres-url",
        help="The Prefect server's database (postgresql+asyncpg://…); implies --postgres.",
    ),
) -> None:
    """Start the Prefect server, apply prefect.yaml, start a worker and the event bridge."""
    from cygno.devtools.local_stack import LOCAL_PREFECT_DATABASE

    database = postgres_url or (LOCAL_PREFECT_DATABASE if postgres else None)
    stack = _stack(s3, database)
    addresses = stack.up(log=lambda m: console.print(f"[dim]{m}[/]"))
    console.print(f"Prefect UI: {addresses.ui_url}   bridge: {addresses.bridge_url}")


@stack_app.command("down")
def stack_down() -> None:
    """Stop every service the stack started."""
    _stack(False).down(log=lambda m: console.print(f"[dim]{m}[/]"))


@stack_app.command("status")
def stack_status() -> None:
    """Which services of the stack are running."""
    table = Table("service", "state")
    for name, alive in _stack(False).status().items():
        table.add_row(name, "[green]running[/]" if alive else "[red]stopped[/]")
    console.print(table)


def _interrupt(signum: int, frame) -> None:
    raise KeyboardInterrupt


@app.command()
def demo(
    once: bool = typer.Option(False, "--once", help="Exit after the runs are processed."),
    runs: int = typer.Option(3, "--runs", min=1, help="Data runs to simulate."),
    events: int = typer.Option(
        40, "--events", min=1, help="Pictures per data run (⁵⁵Fe fits need ≥ 50 spots)."
    ),
    pedestal_events: int = typer.Option(
        100, "--pedestal-events", min=100, help="Pictures in the pedestal run (≥ 100)."
    ),
    size: int = typer.Option(2304, "--size", help="Picture side in pixels (LIME: 2304)."),
    s3: bool = typer.Option(False, "--s3", help="Use a local S3 endpoint instead of file://."),
    timeout: float = typer.Option(1800, "--timeout", help="Seconds to wait for the runs."),
) -> None:
    """Simulate runs arriving from the DAQ and watch the platform process them."""
    stack = _stack(s3)
    settings = stack.adopt_environment()  # before the first Prefect import (demo_lib's)
    from cygno.devtools import demo as demo_lib
    from cygno.storage.catalog import Catalog

    log = lambda m: console.print(f"[dim]{m}[/]")  # noqa: E731
    # Ctrl+C, or a SIGTERM from a service manager, stops everything the demo started
    # (SIGINT is ignored by default when the demo was launched in the background).
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _interrupt)
    try:
        addresses = stack.up(log=log)
        resumed = demo_lib.interrupted()
        for uri in resumed:
            console.print(f"resuming {uri}, interrupted by the previous demo")
        console.rule("DAQ")
        arrived = demo_lib.simulate_and_announce(
            stack, settings, runs, events, (size, size), pedestal_events, console.print
        )
        console.rule("platform")
        console.print(f"Watch it at [bold]{addresses.ui_url}[/]")
        states = demo_lib.wait_for_flow_runs(
            [a.uri for a in arrived] + resumed,
            timeout,
            on_change=lambda s: console.print(
                "  " + ", ".join(f"{u.rsplit('/', 1)[-1]}: {st}" for u, st in sorted(s.items()))
            ),
        )
        console.rule("summary")
        catalog = Catalog(settings.catalog_url)
        print_catalog(console, catalog, first=arrived[0].run.run_number)
        for line in demo_lib.outputs(catalog, settings, [a.run.run_number for a in arrived]):
            console.print(line)
        for line in demo_lib.latencies(catalog, arrived):
            console.print(line)
        console.rule("where to look")
        for line in demo_lib.describe(addresses, settings):
            console.print(line)
        failed = [u for u, st in states.items() if st != "COMPLETED"]
        if failed:
            console.print(f"[red]{len(failed)} run(s) did not complete: {failed}[/]")
        if once:
            raise typer.Exit(1 if failed else 0)
        console.print("The stack stays up; press Ctrl+C to stop everything.")
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        console.print("stopping")
    finally:
        stack.down(log=log)


@stack_app.command("screenshot")
def stack_screenshot(
    out: Path = typer.Option(Path("docs"), "--out", help="Folder for the PNG files."),
) -> None:
    """Screenshots of the running stack's Prefect UI (flow runs, quality artifact)."""
    from cygno.devtools.screenshot import ui_screenshots

    addresses = _stack(False).addresses
    for path in ui_screenshots(addresses.ui_url, addresses.api_url, out):
        console.print(f"wrote {path}")
