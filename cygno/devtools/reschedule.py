"""Give a deployment's interval schedule another interval, after ``prefect deploy``.

A test stack cannot wait prefect.yaml's 3 minutes for a db-mirror run: ``cygno stack up``
shortens the interval here when CYGNO_STACK_DB_MIRROR_INTERVAL_SECONDS is set. The
server's own scheduler still creates the runs; the deployment's other schedules (the
nightly full mirror) are left as they are.

Run as ``python -m cygno.devtools.reschedule FLOW/DEPLOYMENT SECONDS`` with
``PREFECT_API_URL`` set.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import timedelta

from prefect.client.orchestration import get_client
from prefect.client.schemas.schedules import IntervalSchedule


async def reschedule(deployment_name: str, seconds: int) -> None:
    """Replace the interval of the deployment's one interval schedule."""
    async with get_client() as client:
        deployment = await client.read_deployment_by_name(deployment_name)
        (schedule,) = [
            s for s in deployment.schedules or [] if isinstance(s.schedule, IntervalSchedule)
        ]
        await client.update_deployment_schedule(
            deployment.id,
            schedule.id,
            schedule=IntervalSchedule(
                interval=timedelta(seconds=seconds), timezone=schedule.schedule.timezone
            ),
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cygno.devtools.reschedule")
    parser.add_argument("deployment", help="FLOW/DEPLOYMENT, e.g. db-mirror/db-mirror")
    parser.add_argument("seconds", type=int)
    args = parser.parse_args(argv)
    asyncio.run(reschedule(args.deployment, args.seconds))
    print(f"cygno: {args.deployment} every {args.seconds} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
