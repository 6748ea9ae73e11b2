"""``cygno runner jobs``: the HTCondorTaskRunner's jobs left in the job directory."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from cygno.cli import app

runner_app = typer.Typer(help="Inspect the task runner's jobs.", no_args_is_help=True)
app.add_typer(runner_app, name="runner")


@runner_app.command("jobs")
def jobs(
    job_dir: Path | None = typer.Option(None, help="Job directory (default: <data_dir>/jobs)"),
) -> None:
    """List jobs that failed, were held, removed or vanished, or are running now."""
    from cygno.htcondor_runner.status import job_summaries
    from cygno.settings import get_settings

    root = job_dir or get_settings().data_dir / "jobs"
    summaries = job_summaries(root) if root.exists() else []
    table = Table(title=f"jobs in {root}")
    for column in ("batch", "task run", "job", "state", "detail", "log"):
        table.add_column(column)
    for s in summaries:
        table.add_row(s.batch, s.task, s.job, s.state, s.detail, str(s.log))
    Console().print(table if summaries else f"no jobs in {root}")
