"""Apply the automations that ship with the deployments (``deployments/automations.yaml``).

``prefect automation create`` adds a copy on every call; this replaces automations by
name, so applying the file again (every ``cygno stack up``) leaves exactly one of each.
Run as ``python -m cygno.deployments.automations FILE`` with ``PREFECT_API_URL`` set.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import yaml
from prefect.client.orchestration import get_client
from prefect.events.schemas.automations import AutomationCore

from cygno.resources import PrefectApiUnavailable, prefect_api
from cygno.settings import get_settings


def load(path: Path) -> list[AutomationCore]:
    """The automations a YAML file defines (a list under ``automations:``)."""
    data = yaml.safe_load(path.read_text())
    return [AutomationCore.model_validate(item) for item in data["automations"]]


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


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m cygno.deployments.automations FILE", file=sys.stderr)
        return 2
    try:
        names = asyncio.run(apply(load(Path(argv[0]))))
    except PrefectApiUnavailable as error:
        print(f"cygno: {error}", file=sys.stderr)
        return 1
    for name in names:
        print(f"cygno: automation {name} applied")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
