"""`cygno reco` and `cygno pedestal`: reconstruct a run file (or a chunk) locally."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cygno.cli import app

console = Console(stderr=True)


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def parse_events(text: str | None) -> tuple[int, int] | None:
    """`a:b` → (a, b), pictures a..b-1; `a:` → to the end; None → whole file."""
    if not text:
        return None
    start, sep, stop = text.partition(":")
    if not sep:
        raise typer.BadParameter("use a:b (pictures a..b-1) or a: (to the end)")
    try:
        first = int(start) if start else 0
        last = int(stop) if stop else 1 << 62
    except ValueError as error:
        raise typer.BadParameter(f"not a picture range: {text!r}") from error
    if first < 0 or last <= first:
        raise typer.BadParameter(f"empty or negative picture range: {text!r}")
    return first, last


def _load_pedestal(path: Path, max_pictures: int):
    from cygno.reco.pedestal import PedestalMaps, compute_pedestal

    if path.suffix == ".npz":
        return PedestalMaps.load(path)
    with _progress() as bar:
        task = bar.add_task(f"pedestal {path.name}", total=max_pictures, info="")
        return compute_pedestal(
            path, max_pictures, progress=lambda n: bar.update(task, completed=n)
        )


@app.command("pedestal")
def pedestal_command(
    run_file: Path = typer.Argument(..., exists=True, dir_okay=False, help="pedestal run"),
    output: Path = typer.Option(..., "-o", "--output", help="maps to write (.npz)"),
    max_pictures: int = typer.Option(200, "--max-pictures", min=2, help="pictures to use"),
) -> None:
    """Per-pixel pedestal mean and noise of a pedestal run's first pictures."""
    maps = _load_pedestal(run_file, max_pictures)
    maps.save(output)
    console.print(
        f"pedestal of run {maps.run}: {maps.n_pictures} pictures, shape {maps.shape}, "
        f"mean {float(maps.mean.mean()):.2f} ADC, sigma {float(maps.sigma.mean()):.2f} ADC "
        f"→ {output}"
    )


@app.command("reco")
def reco_command(
    raw: Path = typer.Argument(..., exists=True, dir_okay=False, help="MIDAS run file"),
    pedestal: Path = typer.Option(
        ..., "--pedestal", exists=True, dir_okay=False, help=".npz maps or a pedestal run file"
    ),
    config: str = typer.Option("lngs", "--config", help="lngs | lnf | mc | path to a TOML"),
    events: str | None = typer.Option(None, "--events", help="pictures a:b (b excluded)"),
    output: Path = typer.Option(..., "-o", "--output", help="ROOT file to write"),
) -> None:
    """Reconstruct a run file (or a chunk of its pictures) into a ROOT file."""
    from cygno.reco.config import load_config, reco_version
    from cygno.reco.reconstruct import reconstruct_file
    from cygno.storage.checksum import adler32_of

    cfg = load_config(config)
    span = parse_events(events)
    maps = _load_pedestal(pedestal, cfg.pedestal.max_pictures)
    # A gzip run has no table of contents: the bar knows its total only for a chunk.
    total = span[1] - span[0] if span is not None and span[1] < 1 << 40 else None
    with _progress() as bar:
        task = bar.add_task(f"reco {raw.name}", total=total, info="")

        def report(done: int, vetoed: int, clusters: int) -> None:
            bar.update(task, completed=done, info=f"{clusters} clusters, {vetoed} vetoed")

        summary = reconstruct_file(
            raw,
            maps,
            cfg,
            events=span,
            out_path=output,
            input_adler32=adler32_of(raw),
            progress=report,
            input_uri=str(raw.resolve()),
        )
    table = Table(title=f"{output} ({reco_version(cfg)})")
    for column in ("pictures", "vetoed", "clusters", "seconds", "s / picture"):
        table.add_column(column, justify="right")
    table.add_row(
        str(summary.pictures),
        str(summary.vetoed),
        str(summary.clusters),
        f"{summary.seconds:.2f}",
        f"{summary.seconds_per_picture:.4f}",
    )
    Console().print(table)
