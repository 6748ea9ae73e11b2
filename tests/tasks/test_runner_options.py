"""``RunnerOptions``: one frozen value that Prefect can duplicate, compare and pickle."""

from __future__ import annotations

import dataclasses
import os
import pickle

import pytest

from cygno.htcondor_runner import HTCondorTaskRunner, RunnerOptions


def test_options_are_frozen_normalised_and_travel_with_the_runner(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    options = RunnerOptions(backend="htcondor", job_dir="jobs", pass_env=["A"], request_cpus=4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.request_cpus = 8  # type: ignore[misc]
    assert options.job_dir == tmp_path / "jobs", "made absolute once, where it was built"
    assert options.pass_env == ("A",) and options.max_workers == 200
    assert options.poll_seconds == 2.0 and options.spool is False
    runner = HTCondorTaskRunner(options)
    assert HTCondorTaskRunner(backend="htcondor", job_dir="jobs", pass_env=("A",),
                              request_cpus=4) == runner  # fmt: skip
    assert runner.duplicate() == runner and pickle.loads(pickle.dumps(runner)) == runner
    assert HTCondorTaskRunner(options, request_cpus=2).options.request_cpus == 2
    local = RunnerOptions()
    assert local.max_workers == (os.cpu_count() or 1) and local.warm_workers
    with pytest.raises(ValueError, match="backend"):
        RunnerOptions(backend="slurm")  # type: ignore[arg-type]
