"""``cygno catalog``: what the catalog holds — runs with raw, tape, reco and quality state."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from cygno.cli import app
from cygno.cli.errors import CliError, existing_catalog

_STYLE = {
    "ingested": "green",
    "ok": "green",
    "good": "green",
    "warning": "yellow",
    "quarantined": "red",
    "mismatch": "red",
    "missing": "red",
    "bad": "red",
    "deleted": "dim",
}


def _styled(value: str | None) -> str:
    if value is None:
        return "[dim]–[/dim]"
    style = _STYLE.get(value)
    return f"[{style}]{value}[/{style}]" if style else value


def _size(nbytes: int | None) -> str:
    if nbytes is None:
        return "–"
    size = float(nbytes)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


catalog_app = typer.Typer(
    name="catalog",
    help="What the catalog holds (runs, raw/tape/reco/quality state); reset abandoned runs.",
    invoke_without_command=True,
    no_args_is_help=False,
)
app.add_typer(catalog_app)

_URL = typer.Option(None, "--url", help="Catalog database URL (default: CYGNO_CATALOG_URL).")


@catalog_app.callback()
def catalog_command(
    ctx: typer.Context,
    first: int | None = typer.Option(None, "--first", help="First run number shown."),
    last: int | None = typer.Option(None, "--last", help="Last run number shown."),
    tag: str | None = typer.Option(None, "--tag", help="Only this site tag (LNGS, LNF, MAN)."),
    limit: int = typer.Option(50, "--limit", min=0, help="Show at most the last N runs."),
    url: str | None = _URL,
) -> None:
    """Print the catalog: a summary, then one line per run."""
    if ctx.invoked_subcommand is not None:
        return
    from cygno.resources import catalog_for

    settings = _settings(url, None)
    existing_catalog(settings.catalog_url)
    print_catalog(Console(), catalog_for(settings), first, last, tag, limit)


def print_catalog(
    console: Console,
    catalog,
    first: int | None = None,
    last: int | None = None,
    tag: str | None = None,
    limit: int = 50,
) -> None:
    """The catalog's summary table, then one line per run (the last ``limit``)."""
    summary = catalog.summary()
    runs = catalog.runs(first, last, tag)

    overview = Table(title="Catalog", show_header=False, title_justify="left")
    overview.add_column(style="bold")
    overview.add_column()
    overview.add_row("runs", str(summary["runs"]))
    for name in ("raw_files", "tape_copies", "reco_outputs", "quality"):
        counts = summary[name]
        text = ", ".join(f"{_styled(k)} {n}" for k, n in counts.items()) or "[dim]none[/dim]"
        overview.add_row(name.replace("_", " "), text)
    overview.add_row("abandoned runs", str(summary["abandoned_runs"]))
    overview.add_row("logbook rows", str(summary["logbook_rows"]))
    console.print(overview)

    if not runs:
        console.print("[dim]No runs catalogued yet.[/dim]")
        return
    shown = runs[-limit:] if limit else []
    table = Table(title=f"Runs ({len(shown)} of {len(runs)})", title_justify="left")
    table.add_column("run", justify="right", no_wrap=True, min_width=5)
    table.add_column("tag", no_wrap=True)
    table.add_column("raw", no_wrap=True)
    for column in ("size", "events"):
        table.add_column(column, justify="right", overflow="fold")
    for column in ("adler32", "tape", "reco versions", "quality", "pedestal", "failures"):
        table.add_column(column, overflow="fold")
    for run in shown:
        raw = run.raw
        quality = "  ".join(f"{q.reco_version}:{_styled(q.flag)}" for q in run.quality)
        failures = ", ".join(
            f"{f.step}×{f.count}" + (" [red]abandoned[/red]" if f.abandoned else "")
            for f in run.failures
        )
        table.add_row(
            f"{run.run:05d}",
            run.tag,
            _styled(run.raw_state),
            _size(raw.size if raw else None),
            str(raw.events) if raw and raw.events is not None else "–",
            raw.adler32 if raw and raw.adler32 else "–",
            _styled(run.tape_state),
            ", ".join(run.reco_versions) or "–",
            quality or "–",
            str(run.pedestal_run) if run.pedestal_run is not None else "–",
            failures or "–",
        )
    console.print(table)


@catalog_app.command("reset")
def reset_command(
    run: int = typer.Argument(..., help="Run number."),
    tag: str = typer.Option("LNGS", "--tag", help="Site tag of the run."),
    step: str | None = typer.Option(None, "--step", help="Only this step's failures."),
    url: str | None = _URL,
) -> None:
    """Forget a run's failures so an abandoned run is processed again."""
    from cygno.resources import catalog_for

    settings = _settings(url, None)
    existing_catalog(settings.catalog_url)
    catalog = catalog_for(settings)
    if catalog.run(run, tag) is None:
        raise CliError(f"{tag} run {run} is not in the catalog")
    cleared = catalog.reset(run, tag, step)
    what = f"step {step}" if step else "all steps"
    Console().print(f"{tag} run {run:05d}: cleared {cleared} failure record(s) ({what}).")


_STORE = typer.Option(
    None, "--store", help="Object store URL holding the dumps (default: CYGNO_STORE_URL)."
)
_PREFIX = typer.Option("backups/catalog", "--prefix", help="Key prefix of the dumps.")


def _settings(url: str | None, store: str | None):
    from cygno.settings import get_settings

    settings = get_settings()
    update = {k: v for k, v in (("catalog_url", url), ("store_url", store)) if v}
    return settings.model_copy(update=update) if update else settings


@catalog_app.command("backup")
def backup_command(
    url: str | None = _URL,
    store: str | None = _STORE,
    prefix: str = _PREFIX,
    keep_daily: int | None = typer.Option(
        None, "--keep-daily", min=0, help="Then apply retention."
    ),
    keep_weekly: int = typer.Option(4, "--keep-weekly", min=0, help="With --keep-daily."),
) -> None:
    """Dump the catalog (and the mirrored logbook) into the object store now."""
    from cygno.resources import catalog_for, store_for
    from cygno.storage.catalog.backup import apply_retention, dump_catalog

    settings = _settings(url, store)
    objects = store_for(settings)
    info = dump_catalog(catalog_for(settings).url, objects, prefix)
    console = Console()
    total = sum(info.rows.values())
    console.print(f"{objects.uri(info.key)}: {total} rows in {len(info.rows)} tables")
    if keep_daily is not None:
        for key in apply_retention(objects, keep_daily, keep_weekly, prefix):
            console.print(f"[dim]deleted {objects.uri(key)}[/dim]")


@catalog_app.command("backups")
def backups_command(store: str | None = _STORE, prefix: str = _PREFIX) -> None:
    """List the complete catalog dumps, oldest first."""
    from cygno.resources import store_for
    from cygno.storage.catalog.backup import list_dumps

    table = Table(title="Catalog dumps", title_justify="left")
    for column in ("dump", "created (UTC)", "schema", "rows"):
        table.add_column(column)
    for d in list_dumps(store_for(_settings(None, store)), prefix):
        when = f"{d.created_at:%Y-%m-%d %H:%M:%S}"
        table.add_row(d.key.rsplit("/", 1)[1], when, str(d.revision), str(sum(d.rows.values())))
    Console().print(table)


@catalog_app.command("restore")
def restore_command(
    dump: str = typer.Argument("latest", help="A dump's stamp (see `backups`) or 'latest'."),
    url: str | None = _URL,
    store: str | None = _STORE,
    prefix: str = _PREFIX,
) -> None:
    """Rebuild an EMPTY catalog database from a dump (a database with rows is refused)."""
    from cygno.resources import store_for
    from cygno.storage.catalog.backup import RestoreError, list_dumps, restore_catalog

    settings = _settings(url, store)
    objects = store_for(settings)
    console = Console()
    if dump == "latest":
        dumps = list_dumps(objects, prefix)
        if not dumps:
            console.print(f"[red]no complete dump under {objects.uri(prefix)}[/red]")
            raise typer.Exit(1)
        key = dumps[-1].key
    else:
        key = f"{prefix.rstrip('/')}/{dump}"
    try:
        rows = restore_catalog(objects, key, settings.catalog_url)
    except RestoreError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(1) from None
    console.print(
        f"restored {sum(rows.values())} rows in {len(rows)} tables from {objects.uri(key)}"
    )
