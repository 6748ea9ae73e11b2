"""The Prefect events the platform emits and the resources they are about.

One module, imported by the event bridge (a service), the sentinel and the quality task,
so the names the deployment triggers in ``prefect.yaml`` match on are written once.
Pure data: no Prefect import, no settings.
"""

from __future__ import annotations

#: A raw file landed in ``raw/<tag>/``: the trigger of ``process-run``.
RAW_ARRIVED = "cygno.raw.arrived"
#: A run's quality came out "bad" or "suspect" (automations may notify on it).
QUALITY_ALARM = "cygno.quality.alarm"


def raw_file_resource(
    uri: str, tag: str, run: int, key: str, size: int, etag: str | None = None
) -> dict[str, str]:
    """The resource of a ``cygno.raw.arrived`` event. Its id is the object's URI in the
    platform's store, the label the trigger deduplicates on (``prefect.resource.id``)."""
    resource = {
        "prefect.resource.id": uri,
        "prefect.resource.name": f"{tag} run{run:05d}",
        "cygno.run": str(run),
        "cygno.tag": tag,
        "cygno.key": key,
        "cygno.size": str(size),
    }
    if etag is not None:
        resource["cygno.etag"] = etag
    return resource


def run_resource_id(tag: str, run: int) -> str:
    """The resource id of a run (events about a run rather than one file)."""
    return f"cygno.run.{tag}.{run:05d}"
