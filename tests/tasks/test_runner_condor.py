"""The ``htcondor`` backend without a pool: the submit description with the real
``htcondor2.Submit``, the spool mode's user log from schedd states read back with the
real ``htcondor2.JobEventLog``, the IDTOKEN configuration of the real bindings, and the
errors for a schedd or collector that cannot be reached, from real lookups."""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

import classad2
import htcondor2
import pytest
from prefect import flow, task

from cygno.htcondor_runner import HTCondorTaskRunner, JobSpec, SchedulerError
from cygno.htcondor_runner.condor import (
    HOLD_CODE_SPOOLING_INPUT,
    HTCondorScheduler,
    configure_bindings,
    state_events,
    submit_description,
)
from cygno.htcondor_runner.eventlog import HOLD_CODE_MEMORY, EventLogWriter

sys.path.insert(0, str(Path(__file__).parent))
import test_runner_jobfns as jobfns


def _job(tmp_path: Path, **fields) -> JobSpec:
    return JobSpec(
        executable="/opt/venv/bin/python",
        arguments=["-m", "cygno.htcondor_runner.job", "payload.pkl", "result.pkl"],
        log=tmp_path / "job-1.log",
        output=tmp_path / "job-1.out",
        error=tmp_path / "job-1.err",
        batch_name="process-run-run01234",
        directory=tmp_path,
        input_files=("payload.pkl",),
        output_files=("result.pkl",),
        **fields,
    )


def test_submit_description_transfers_the_sandbox(tmp_path):
    runner = HTCondorTaskRunner(
        backend="htcondor",
        request_cpus=2,
        environment={"CYGNO_RECO_CONFIG": "lngs"},
        container_image="docker://cygno/reco:1",
        extra_submit={"accounting_group": "cygno"},
    )
    assert runner.job_environment() == {
        "OMP_NUM_THREADS": "2",
        "NUMBA_NUM_THREADS": "2",
        "CYGNO_RECO_CONFIG": "lngs",
    }, "nothing of the flow's environment unless asked"
    spec = _job(
        tmp_path,
        request_cpus=2,
        request_memory_mb=3000,
        request_disk_mb=5000,
        environment=runner.job_environment(),
        container_image=runner.options.container_image,
        extra=runner.options.extra_submit,
    )
    description = submit_description(spec)
    assert isinstance(description, htcondor2.Submit)
    assert description["request_cpus"] == "2"
    assert description["request_memory"] == "3000MB"
    assert description["request_disk"] == "5000MB"
    assert description["batch_name"] == "process-run-run01234"
    assert description["MY.JobBatchName"] == '"process-run-run01234"'
    assert description["initialdir"] == str(tmp_path)
    assert description["should_transfer_files"] == "YES"
    assert description["when_to_transfer_output"] == "ON_EXIT"
    assert description["transfer_input_files"] == "payload.pkl"
    assert description["transfer_output_files"] == "result.pkl"
    assert description["transfer_executable"] == "false"
    assert description["output"] == "job-1.out" and description["error"] == "job-1.err"
    assert description["log"] == str(spec.log), "a local schedd writes the user log itself"
    assert description["stream_output"] == "true"
    assert "CYGNO_RECO_CONFIG=lngs" in description["environment"]
    assert description["getenv"] == "false"
    assert description["container_image"] == "docker://cygno/reco:1"
    assert description["accounting_group"] == "cygno"
    assert "cygno.htcondor_runner.job payload.pkl result.pkl" in description["arguments"]
    assert "queue" in str(description)


def test_spooled_submit_description_leaves_the_job_for_retrieval(tmp_path):
    description = submit_description(_job(tmp_path), spool=True)
    assert "log" not in description, "the remote schedd's log stays in its spool"
    assert "stream_output" not in description
    assert "JobStatus == 4" in description["leave_in_queue"]
    assert description["transfer_input_files"] == "payload.pkl"
    assert description["transfer_output_files"] == "result.pkl"


def test_spool_is_the_default_for_a_named_schedd():
    assert not HTCondorTaskRunner(backend="htcondor").options.spool
    assert HTCondorTaskRunner(backend="htcondor", schedd_name="s@h").options.spool
    assert HTCondorTaskRunner(backend="htcondor", collector="cm:9618").options.spool
    assert not HTCondorTaskRunner(backend="htcondor", collector="cm", spool=False).options.spool


def _replay(tmp_path: Path, states: list[dict]) -> list[htcondor2.JobEvent]:
    """Write the events for a sequence of queried job states; read them back."""
    log = tmp_path / "remote.log"
    writer = EventLogWriter(log, 42)
    writer.submitted()
    status = 1
    for state in states:
        status, events = state_events(status, classad2.ClassAd(state))
        for method, args in events:
            getattr(writer, method)(*args)
    return list(htcondor2.JobEventLog(str(log)).events(stop_after=0))


def test_spool_mode_writes_the_states_it_queries_as_a_user_log(tmp_path):
    events = _replay(
        tmp_path,
        [
            {"JobStatus": 5, "HoldReasonCode": HOLD_CODE_SPOOLING_INPUT, "HoldReason": "Spool"},
            {"JobStatus": 2, "RemoteHost": "slot1@wn-07.cloud.infn.it"},
            {"JobStatus": 5, "HoldReasonCode": HOLD_CODE_MEMORY, "HoldReason": "over memory"},
            {"JobStatus": 1},
            {"JobStatus": 2, "RemoteHost": "slot2@wn-08.cloud.infn.it"},
            {"JobStatus": 4, "ExitCode": 0, "ExitBySignal": False},
        ],
    )
    kinds = [event.type for event in events]
    T = htcondor2.JobEventType
    assert kinds == [T.SUBMIT, T.EXECUTE, T.JOB_HELD, T.JOB_RELEASED, T.EXECUTE, T.JOB_TERMINATED]
    assert events[1]["ExecuteHost"] == "slot1@wn-07.cloud.infn.it"
    assert events[2]["HoldReasonCode"] == HOLD_CODE_MEMORY
    assert events[2]["HoldReason"] == "over memory"
    assert events[-1]["ReturnValue"] == 0 and events[-1].cluster == 42


def test_spool_mode_reports_a_killed_or_removed_job(tmp_path):
    killed = _replay(tmp_path / "k", [{"JobStatus": 4, "ExitBySignal": True, "ExitSignal": 9}])
    assert not killed[-1]["TerminatedNormally"] and killed[-1]["TerminatedBySignal"] == 9
    removed = _replay(tmp_path / "r", [{"JobStatus": 3, "RemoveReason": "by operator"}])
    assert removed[-1].type == htcondor2.JobEventType.JOB_ABORTED
    assert removed[-1]["Reason"] == "by operator"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("schedd_name", ["schedd@cygno.cloud.infn.it", None])
def test_unreachable_collector_is_an_error_naming_it_quickly(tmp_path, schedd_name):
    collector = f"127.0.0.1:{_closed_port()}"
    scheduler = HTCondorScheduler(schedd_name, collector, spool=True)
    started = time.monotonic()
    with pytest.raises(SchedulerError) as caught:
        scheduler.submit(_job(tmp_path))
    assert time.monotonic() - started < 10
    message = str(caught.value)
    assert f"collector '{collector}'" in message and "cannot reach HTCondor" in message
    if schedd_name:
        assert repr(schedd_name) in message
    assert "Failed communication with collector" in message


def test_unreachable_local_schedd_is_an_error_not_a_fallback(tmp_path):
    with pytest.raises(SchedulerError, match=r"cannot reach HTCondor: the local schedd.*local'"):
        HTCondorScheduler().submit(_job(tmp_path))


def test_token_file_configures_idtokens_for_the_bindings(tmp_path):
    token = tmp_path / "cygno.idtoken"
    token.write_text("eyJhbGciOiJIUzI1NiJ9.e30.signature\n")
    names = ("SEC_TOKEN_DIRECTORY", "SEC_CLIENT_AUTHENTICATION_METHODS", "TCP_CONNECT_TIMEOUT")
    before = {name: htcondor2.param.get(name) for name in names}
    try:
        configure_bindings(token, {"TCP_CONNECT_TIMEOUT": "5"})
        directory = Path(htcondor2.param["SEC_TOKEN_DIRECTORY"])
        assert [p.resolve() for p in directory.iterdir()] == [token.resolve()]
        assert htcondor2.param["SEC_CLIENT_AUTHENTICATION_METHODS"] == "IDTOKENS"
        assert htcondor2.param["TCP_CONNECT_TIMEOUT"] == "5"
        with pytest.raises(SchedulerError, match=r"token file .* does not exist"):
            configure_bindings(tmp_path / "missing", {})
    finally:
        for name, value in before.items():
            if value is None:
                htcondor2.param.pop(name, None)
            else:
                htcondor2.param[name] = value


trivial = task(jobfns.trivial)


@flow
def trivial_flow():
    future = trivial.submit(1)
    return future.task_run_id, future.result(raise_on_failure=False)


@pytest.mark.usefixtures("prefect_api")
def test_unreachable_schedd_fails_the_task_run(tmp_path):
    from prefect import get_client

    collector = f"127.0.0.1:{_closed_port()}"
    runner = HTCondorTaskRunner(backend="htcondor", collector=collector, job_dir=tmp_path)
    task_run_id, error = trivial_flow.with_options(task_runner=runner)()
    with get_client(sync_client=True) as client:
        assert client.read_task_run(task_run_id).state.is_failed()
    assert isinstance(error, SchedulerError) and collector in str(error)
