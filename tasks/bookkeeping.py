"""Run-level bookkeeping around the flows: abandoned runs are skipped, failures counted."""

from __future__ import annotations

from prefect import task

from cygno.tasks import resources
from cygno.tasks.ingest import NotTheRunsFile, raw_location
from cygno.tasks.models import RawFile
from cygno.tasks.retry import retry_unless

#: Flow runs of one run that may fail before it is abandoned (skipped until reset).
ABANDON_AFTER = 3


@task(
    name="check-abandoned",
    retries=2,
    retry_delay_seconds=5,
    retry_condition_fn=retry_unless(ValueError),  # a key that is no run's: final
    timeout_seconds=120,  # the first step: a hung catalog fails the run, never stalls it
)
def abandoned(raw_uri: str) -> str | None:
    """Why this run is skipped (it failed too often and nobody reset it), or None."""
    _, tag, run = raw_location(raw_uri)
    if not resources.catalog().is_abandoned(run, tag):
        return None
    return (
        f"{tag} run {run} is abandoned after repeated failures; "
        f"reset it with `cygno catalog reset {run} --tag {tag}` to process it again"
    )


def record_failure_hook(step: str):
    """A flow on_failure hook that counts the failure against the flow run's raw file
    (never for a key that is not the run's raw file: see :class:`NotTheRunsFile`)."""

    def record(flow, flow_run, state) -> None:
        if isinstance(state.result(raise_on_failure=False), NotTheRunsFile):
            return  # a key that is not the run's raw file says nothing about the run
        raw_uri = (flow_run.parameters or {}).get("raw_uri")
        raw = (flow_run.parameters or {}).get("raw")
        if raw_uri:
            try:
                _, tag, run = raw_location(raw_uri)
            except ValueError:
                return  # not a run's key at all (an alias, a stray object)
        elif raw is not None:
            tag, run = (raw["tag"], raw["run"]) if isinstance(raw, dict) else (raw.tag, raw.run)
        else:
            return
        _count_failure(run, tag, step, state.message or state.name)

    record.__name__ = f"record_{step.replace('-', '_')}_failure"
    return record


def _count_failure(run: int, tag: str, step: str, message: str) -> None:
    resources.catalog().record_failure(run, tag, step, message, abandon_after=ABANDON_AFTER)


@task(name="record-failure", retries=2, retry_delay_seconds=5, timeout_seconds=120)
def record_failure(run: int, tag: str, step: str, message: str) -> None:
    """Count a failure against a run from inside a flow that handles many runs (one
    failed run of reprocess-runs is not a failed flow run, so no hook sees it)."""
    _count_failure(run, tag, step, message)


@task(name="select-runs", retries=2, retry_delay_seconds=5)
def select_runs(
    first_run: int | None, last_run: int | None, tag: str, reco_version: str
) -> list[RawFile]:
    """Catalogued, not quarantined, not abandoned runs in the range lacking ``reco_version``
    (the whole catalog when no range is given), in run order."""
    catalog, store = resources.catalog(), resources.store()
    chosen = []
    for run in catalog.runs_lacking(reco_version, tag, first_run, last_run):
        raw = catalog.run(run, tag).raw
        chosen.append(
            RawFile(
                raw.uri,
                store.key_of(raw.uri),
                run,
                tag,
                raw.size,
                raw.adler32,
                raw.md5,
                raw.events,
                raw.pictures,
            )
        )
    return chosen
