"""Apply the automations that ship with the deployments (``deployments/automations.yaml``).

``prefect automation create`` adds a copy on every call; this replaces automations by
name, so applying the file again (every ``cygno stack up``) leaves exactly one of each.
Run as ``python -m cygno.deployments.automations FILE`` with ``PREFECT_API_URL`` set;
``--silence SECONDS`` shortens the wait of the silence-detecting (proactive) triggers, for
a test stack that cannot wait the shipped 90 s.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import yaml
from prefect.client.orchestration import get_client
from prefect.events.schemas.automations import AutomationCore

from cygno.resources import PrefectApiUnavailable, prefect_api
from cygno.settings import get_settings


def load(path: Path, silence: int | None = None) -> list[AutomationCore]:
    """The automations a YAML file defines (a list under ``automations:``); with
    ``silence``, every proactive trigger fires after that many seconds instead."""
    items = yaml.safe_load(path.read_text())["automations"]
    if silence is not None:
        for item in items:
            if item["trigger"].get("posture") == "Proactive":
                item["trigger"]["within"] = silence
    return [AutomationCore.model_validate(item) for item in items]


async def apply(automations: list[AutomationCore]) -> list[str]:
    """Create each automation, deleting any existing one with its name first."""
    with prefect_api(get_settings()):
        return await _apply(automations)


async def _apply(automations: list[AutomationCore]) -> list[str]:
    async with get_client() as client:
        for automation in automations:
            for existing in await client.read_automations_by_name(automation.name):
                await client.delete_automation(existing.id)
            await client.create_automation(automation)
    return [automation.name for automation in automations]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cygno.deployments.automations")
    parser.add_argument("file", type=Path)
    parser.add_argument(
        "--silence", type=int, help="seconds a proactive trigger waits (default: the file's)"
    )
    args = parser.parse_args(argv)
    try:
        names = asyncio.run(apply(load(args.file, args.silence)))
    except PrefectApiUnavailable as error:
        print(f"cygno: {error}", file=sys.stderr)
        return 1
    for name in names:
        print(f"cygno: automation {name} applied")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
