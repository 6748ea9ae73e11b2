"""``cygno simulate``: a pedestal run and N data runs, uploaded and logged as the DAQ does."""

from __future__ import annotations

import time

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cygno.cli import app


def _shape(text: str) -> tuple[int, int]:
    """``2304x2304`` (height × width) or one number for a square picture."""
    try:
        parts = [int(p) for p in text.lower().replace("×", "x").split("x")]
    except ValueError:
        raise typer.BadParameter(f"shape must look like 2304x2304, not {text!r}") from None
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or min(parts) < 16:
        raise typer.BadParameter(f"shape must be HEIGHTxWIDTH with sides ≥ 16, not {text!r}")
    return parts[0], parts[1]


@app.command()
def simulate(
    runs: int = typer.Option(3, "--runs", min=0, help="Data runs after the pedestal run."),
    events: int = typer.Option(20, "--events", min=1, help="Pictures per data run."),
    kind: str = typer.Option("fe55", "--kind", help="Data run kind: fe55, mixed, muon, ..."),
    shape: str = typer.Option("2304x2304", "--shape", help="Picture HEIGHTxWIDTH (LIME 2304)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the camera and of every run."),
    tag: str = typer.Option("LNGS", "--tag", help="Site tag in raw/<tag>/run<NNNNN>.mid.gz."),
    first_run: int | None = typer.Option(
        None, "--first-run", min=1, help="First run number (default: after the logbook's last)."
    ),
    pedestal: bool = typer.Option(True, "--pedestal/--no-pedestal", help="Start with one."),
    pedestal_events: int = typer.Option(
        100, "--pedestal-events", min=1, help="Pictures in the pedestal run (≥100 to be used)."
    ),
    spark_fraction: float = typer.Option(
        0.0, "--spark-fraction", min=0.0, max=1.0, help="Fraction of pictures with a spark."
    ),
) -> None:
    """Simulate a pedestal run and data runs, upload them and write the DAQ logbook rows."""
    from cygno.reco.simulate.picture import KINDS
    from cygno.reco.simulate.upload import simulate_and_upload
    from cygno.resources import store_for
    from cygno.settings import get_settings
    from cygno.storage.daqdb import DaqLogbook

    if kind not in KINDS or kind == "pedestal":
        raise typer.BadParameter(f"--kind must be one of {', '.join(KINDS[1:])}, not {kind!r}")
    size = _shape(shape)
    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = store_for(settings)
    logbook = DaqLogbook(settings.daqdb_url)
    logbook.create_schema()
    first = first_run if first_run is not None else (logbook.last_run_number() or 0) + 1
    console = Console()
    columns = (
        TextColumn("run {task.fields[run]:05d}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("pictures"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as bars:
        tasks: dict[int, int] = {}

        def progress(run: int, done: int, total: int) -> None:
            if run not in tasks:
                tasks[run] = bars.add_task("simulate", total=total, run=run)
            bars.update(tasks[run], completed=done)

        delivered = simulate_and_upload(
            store,
            logbook,
            runs=runs,
            events=events,
            kind=kind,
            shape=size,
            seed=seed,
            tag=tag,
            first_run=first,
            pedestal=pedestal,
            pedestal_events=pedestal_events,
            spark_fraction=spark_fraction,
            start_time=time.time(),
            progress=progress,
        )
    table = Table(title=f"Simulated runs in {store.uri('raw/' + tag)}")
    for name in ("run", "kind", "pictures", "tracks", "MB", "md5"):
        table.add_column(name, no_wrap=True)
    for run in delivered:
        tracks = sum(len(p.tracks) for p in run.truth.pictures)
        table.add_row(
            str(run.run_number),
            run.truth.kind,
            str(run.truth.n_pictures),
            str(tracks),
            f"{run.checksums.size / 1e6:.1f}",
            run.checksums.md5 or "",
        )
    console.print(table)
