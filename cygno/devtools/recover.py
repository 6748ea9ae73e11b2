"""What ``cygno stack up`` does before it starts a worker on an existing data directory.

With no worker alive, no flow run of the stack's pool can be running: a run still
``Running`` or ``Pending`` died with the previous stack (Ctrl+C, a crash). Such runs end
``Crashed`` (which releases their deployment concurrency slots) and any slot still held
is freed, so new runs do not wait forever at ``AwaitingConcurrencySlot``. The sentinel
then starts the raw files of the crashed ``process-run``s again.

Run as ``python -m cygno.devtools.recover --pool POOL`` with ``PREFECT_API_URL`` set.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
    WorkPoolFilter,
    WorkPoolFilterName,
)
from prefect.client.schemas.objects import StateType
from prefect.states import Crashed

from cygno.resources import PrefectApiUnavailable, prefect_api
from cygno.settings import get_settings

IN_FLIGHT = [StateType.RUNNING, StateType.PENDING, StateType.CANCELLING]
#: Prefect names a deployment's concurrency limit ``deployment:<id>``.
DEPLOYMENT_LIMIT_PREFIX = "deployment:"


async def recover(pool: str) -> tuple[list[str], list[str]]:
    """Crash the pool's in-flight flow runs and free held deployment slots.

    Returns the names of the crashed runs and of the limits whose slots were freed.
    """
    with prefect_api(get_settings()):
        return await _recover(pool)


async def _recover(pool: str) -> tuple[list[str], list[str]]:
    async with get_client() as client:
        stale = await client.read_flow_runs(
            work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[pool])),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=IN_FLIGHT))
            ),
        )
        for run in stale:
            await client.set_flow_run_state(
                run.id,
                Crashed(message="The local stack stopped while this run was in progress."),
                force=True,
            )
        freed = []
        for limit in await client.read_global_concurrency_limits(limit=200):
            if limit.name.startswith(DEPLOYMENT_LIMIT_PREFIX) and limit.active_slots > 0:
                await client.update_global_concurrency_limit(
                    limit.name, GlobalConcurrencyLimitUpdate(active_slots=0)
                )
                freed.append(limit.name)
    return [run.name for run in stale], freed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", required=True)
    args = parser.parse_args(argv)
    try:
        crashed, freed = asyncio.run(recover(args.pool))
    except PrefectApiUnavailable as error:
        print(f"cygno: {error}", file=sys.stderr)
        return 1
    for name in crashed:
        print(f"cygno: flow run {name} died with the previous stack: marked Crashed")
    for name in freed:
        print(f"cygno: freed the held slots of {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
