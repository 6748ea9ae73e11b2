"""The local stack's schedules, served by the Prefect server's own scheduler.

- Every scheduled deployment of prefect.yaml gets scheduled runs.
- A scheduled db-mirror run completes within its interval: the worker runs what the
  scheduler creates. The stack's db-mirror interval is 20 s here, not prefect.yaml's
  180 s (CYGNO_STACK_DB_MIRROR_INTERVAL_SECONDS, applied by `cygno stack up`).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import yaml

from cygno.devtools.local_stack import REPO_ROOT
from tests.devtools.stack import Stack, running_stack
from tests.flows.harness import wait_for

pytestmark = pytest.mark.slow
DB_MIRROR_INTERVAL = 20


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    with running_stack(
        tmp_path_factory, CYGNO_STACK_DB_MIRROR_INTERVAL_SECONDS=str(DB_MIRROR_INTERVAL)
    ) as stack:
        yield stack


def test_the_scheduler_creates_runs_for_every_scheduled_deployment(stack):
    deployments = stack.api("deployments/filter", {"limit": 50})
    scheduled = {d["name"]: d["id"] for d in deployments if d["schedules"]}
    in_yaml = yaml.safe_load((REPO_ROOT / "prefect.yaml").read_text())["deployments"]
    assert set(scheduled) == {d["name"] for d in in_yaml if d.get("schedules")}
    assert {"tape-reconcile", "db-mirror", "sentinel"} <= set(scheduled)

    def auto_scheduled(deployment_id: str) -> list[dict]:
        body = {
            "deployments": {"id": {"any_": [deployment_id]}},
            "flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}},
        }
        return [run for run in stack.api("flow_runs/filter", body) if run["auto_scheduled"]]

    def runs_of_each():
        found = {name: auto_scheduled(deployment_id) for name, deployment_id in scheduled.items()}
        return found if all(found.values()) else None

    wait_for(runs_of_each, timeout=60, interval=2, what="scheduled runs of every deployment")


def test_a_scheduled_db_mirror_run_completes_within_its_interval(stack):
    """The stack's interval replaced prefect.yaml's (the nightly full mirror stays), and a
    run the scheduler created completes before the next one is due."""
    (deployment,) = [
        d for d in stack.api("deployments/filter", {"limit": 50}) if d["name"] == "db-mirror"
    ]
    schedules = [s["schedule"] for s in deployment["schedules"]]
    assert [s["interval"] for s in schedules if "interval" in s] == [DB_MIRROR_INTERVAL]
    assert [s["cron"] for s in schedules if "cron" in s] == ["15 3 * * *"]
    body = {
        "deployments": {"id": {"any_": [deployment["id"]]}},
        "flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}},
    }
    done = wait_for(
        lambda: [run for run in stack.api("flow_runs/filter", body) if run["auto_scheduled"]],
        timeout=DB_MIRROR_INTERVAL + 120, interval=2, what="a scheduled db-mirror run to complete",
    )  # fmt: skip
    assert done[0]["parameters"] == {}
