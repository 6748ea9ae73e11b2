"""A local stack whose worker dies mid-run (with the flow run's process): the run ends
Crashed through the shipped heartbeat automation (deployments/automations.yaml, waiting
45 s of silence here instead of 90: CYGNO_STACK_CRASH_SILENCE_SECONDS), its concurrency
slot comes back, the next notification is processed, and the killed run's file completes
exactly once.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator

import psutil
import pytest

from tests.devtools.stack import FINAL, Stack, running_stack
from tests.flows.harness import wait_for

pytestmark = pytest.mark.slow
#: One and a half heartbeats (30 s apart): a loaded machine delays none by 15 s.
CRASH_SILENCE = 45


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    with running_stack(
        tmp_path_factory, CYGNO_STACK_CRASH_SILENCE_SECONDS=str(CRASH_SILENCE)
    ) as stack:
        yield stack


def _final_runs(stack: Stack, uri: str, final: set[str] = FINAL) -> list[dict] | None:
    """The file's process-runs, once the latest is in a ``final`` state."""
    runs = stack.process_runs(uri)
    return runs if runs and runs[-1]["state_type"] in final else None


def test_a_worker_killed_mid_run_crashes_the_run_which_then_completes_once(stack):
    (automation,) = [
        a
        for a in stack.api("automations/filter", {})
        if a["name"] == "cygno-crash-silent-flow-runs"
    ]
    assert automation["trigger"]["within"] == CRASH_SILENCE
    stack.settle()
    # The killed run long enough to be caught running, the following one short.
    pedestal, killed = stack.plat.simulate(runs=1, events=12, first_run=101)
    (following,) = stack.plat.simulate(runs=1, events=4, first_run=103, pedestal=False)
    killed_uri = stack.plat.store.uri(killed.key)
    following_uri = stack.plat.store.uri(following.key)

    # The pedestal first, so that the killed run is the only one in flight: a run killed
    # before it started (Pending, no heartbeat yet) is left to the next `stack up`.
    pedestal_uri = stack.plat.store.uri(pedestal.key)
    stack.notify(pedestal.key, pedestal.checksums.size)
    runs = wait_for(lambda: _final_runs(stack, pedestal_uri), timeout=300, what="the pedestal")
    assert [run["state_type"] for run in runs] == ["COMPLETED"]
    stack.notify(killed.key, killed.checksums.size)

    def running():
        runs = stack.process_runs(killed_uri)
        return runs and runs[-1]["state_type"] == "RUNNING" and runs[-1]

    victim = wait_for(running, timeout=300, interval=0.5, what="the process-run to start")
    resource = f"prefect.flow-run.{victim['id']}"
    wait_for(
        lambda: stack.api(
            "events/filter",
            {"filter": {"event": {"name": ["prefect.flow-run.heartbeat"]},
                        "resource": {"id": [resource]}}},
        )["events"],
        timeout=60, interval=0.5, what="the run's first heartbeat",
    )  # fmt: skip

    # The host dies: the worker and the flow run's process, without a word.
    processes = stack.worker_and_descendants()
    for process in processes:
        process.send_signal(signal.SIGKILL)
    _gone, alive = psutil.wait_procs(processes, timeout=30)
    assert not alive

    ended = wait_for(lambda: _final_runs(stack, killed_uri), timeout=240, what="the dead run")
    assert [run["state_type"] for run in ended] == ["CRASHED"], ended[-1]["state"]

    def slots_held() -> int:
        return sum(
            limit["active_slots"]
            for limit in stack.api("v2/concurrency_limits/filter", {})
            if limit["name"].startswith("deployment:")
        )

    # Crashed gives its deployment concurrency slot back.
    wait_for(lambda: slots_held() == 0, timeout=60, what="the slot to return")

    # A new worker (stack up starts what is not running, then runs the sentinel, which
    # restarts the crashed run's file), and the next file arrives.
    stack.up()
    stack.notify(following.key, following.checksums.size)

    # The following file is processed once (the sentinel of stack up may have announced it
    # before its notification did: one run either way), the killed one completes once.
    for uri in (following_uri, killed_uri):
        wait_for(
            lambda u=uri: _final_runs(stack, u, {"COMPLETED", "FAILED"}),
            timeout=400, interval=2, what=f"{uri} to be processed",
        )  # fmt: skip
    assert [run["state_type"] for run in stack.process_runs(following_uri)] == ["COMPLETED"]
    runs = stack.process_runs(killed_uri)
    assert [(run["id"], run["state_type"]) for run in runs][:1] == [(victim["id"], "CRASHED")]
    assert [run["state_type"] for run in runs] == ["CRASHED", "COMPLETED"]
    record = stack.plat.catalog.run(killed.run_number, "LNGS")
    assert len(record.reco) == 1 and record.reco[0].events == 12
