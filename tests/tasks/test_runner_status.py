"""``cygno runner jobs`` reads the user logs the local scheduler writes."""

from __future__ import annotations

from typer.testing import CliRunner

from cygno.cli import _register, app
from cygno.htcondor_runner.eventlog import HOLD_CODE_MEMORY, EventLogWriter
from cygno.htcondor_runner.status import job_summaries


def test_job_summaries_and_cli(tmp_path):
    held = EventLogWriter(tmp_path / "flow-a" / "chunk-1" / "job-1.log", 3)
    held.submitted()
    held.executing()
    held.held("Job has gone over memory limit of 100 megabytes.", HOLD_CODE_MEMORY)
    failed = EventLogWriter(tmp_path / "flow-a" / "chunk-2" / "job-1.log", 4)
    failed.submitted()
    failed.executing()
    failed.terminated(3)

    summaries = {s.task: s for s in job_summaries(tmp_path)}
    assert summaries["chunk-1"].state == "held"
    assert (
        "memory limit" in summaries["chunk-1"].detail and "code 34" in summaries["chunk-1"].detail
    )
    assert (summaries["chunk-2"].state, summaries["chunk-2"].detail) == ("terminated", "exit 3")
    assert summaries["chunk-2"].job == "4.0"

    _register()
    result = CliRunner().invoke(app, ["runner", "jobs", "--job-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "chunk-1" in result.output and "held" in result.output
