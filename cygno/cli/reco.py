"""`cygno reco` and `cygno pedestal`: reconstruct a run file (or a chunk) locally."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cygno.cli import app, loading
from cygno.cli.errors import CliError, replaced_on_success, require_midas

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


def _check_midas(path: Path) -> None:
    with path.open("rb") as handle:
        require_midas(handle, str(path))


def _load_pedestal(path: Path, max_pictures: int):
    from cygno.reco.pedestal import PedestalMaps, compute_pedestal

    if path.suffix == ".npz":
        return PedestalMaps.load(path)
    _check_midas(path)
    with _progress() as bar:
        task = bar.add_task(f"pedestal {path.name}", total=max_pictures, info="")
        maps = compute_pedestal(
            path, max_pictures, progress=lambda n: bar.update(task, completed=n)
        )
        # A shorter run ends the bar at what it really used, not at --max-pictures.
        bar.update(task, total=maps.n_pictures, completed=maps.n_pictures)
    return maps


def _picture_shape(path: Path) -> tuple[int, int] | None:
    """The run's camera-0 picture shape as its ODB records it (None when it does not)."""
    from cygno.storage.midas import MidasFile
    from cygno.storage.midas.odb import camera_shapes

    with MidasFile(path) as midas:
        return camera_shapes(midas.bor_odb).get(0)


@app.command("pedestal")
def pedestal_command(
    run_file: Path = typer.Argument(..., exists=True, dir_okay=False, help="pedestal run"),
    output: Path = typer.Option(..., "-o", "--output", help="maps to write (.npz)"),
    max_pictures: int = typer.Option(200, "--max-pictures", min=2, help="pictures to use"),
) -> None:
    """Per-pixel pedestal mean and noise of a pedestal run's first pictures."""
    maps = _load_pedestal(run_file, max_pictures)
    partial = replaced_on_success(output)
    maps.save(partial)
    partial.replace(output)
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
    with loading():
        from cygno.reco.config import load_config, reco_version
        from cygno.reco.reconstruct import reconstruct_file, warm_up
        from cygno.storage.checksum import adler32_of

    cfg = load_config(config)
    span = parse_events(events)
    _check_midas(raw)
    maps = _load_pedestal(pedestal, cfg.pedestal.max_pictures)
    shape = _picture_shape(raw)
    if shape is not None and tuple(maps.shape) != shape:
        raise CliError(
            f"{pedestal}: pedestal maps are {maps.shape[0]}×{maps.shape[1]}, "
            f"but {raw} has {shape[0]}×{shape[1]} pictures"
        )
    with loading():
        warm_up()  # numba's kernels, once the inputs are known to be right
    partial = replaced_on_success(output)
    # A gzip run has no table of contents: the bar knows its total only for a chunk.
    total = span[1] - span[0] if span is not None and span[1] < 1 << 40 else None
    with _progress() as bar:
        task = bar.add_task(f"reco {raw.name}", total=total, info="")

        def report(done: int, vetoed: int, clusters: int) -> None:
            bar.update(task, completed=done, info=f"{clusters} clusters, {vetoed} vetoed")

        try:
            summary = reconstruct_file(
                raw,
                maps,
                cfg,
                events=span,
                out_path=partial,
                input_adler32=adler32_of(raw),
                progress=report,
                input_uri=str(raw.resolve()),
            )
            if summary.pictures == 0:
                raise CliError(f"{raw}: --events {events} selects none of its pictures")
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        # The bar of a whole gzip run had no total: it ends at what was really done.
        bar.update(task, total=summary.pictures, completed=summary.pictures)
    partial.replace(output)
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
