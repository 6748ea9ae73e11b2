"""reprocess-runs: reconstruct catalogued runs again with a (new) reco version.

Each run: raw file back from tape if S3 no longer has it → reconstruct-run → quality.
Outputs of the new version go beside the old ones (the key holds the version); runs
that already have it are not selected. One run failing does not stop the others.
"""

from __future__ import annotations

from prefect import flow
from prefect.states import Completed, Failed

from cygno.flows.reconstruct_run import reconstruct_run
from cygno.reco.config import RecoConfig
from cygno.reco.config import reco_version as version_of
from cygno.tasks.bookkeeping import record_failure_hook, select_runs
from cygno.tasks.models import RawFile
from cygno.tasks.quality import quality
from cygno.tasks.reconstruct import resolve_config
from cygno.tasks.tape import recall_from_tape


@flow(
    name="reprocess-run",
    flow_run_name="reprocess-{raw.tag}-{raw.run}",
    validate_parameters=False,
    on_failure=[record_failure_hook("reprocess")],
)
def reprocess_run(raw: RawFile, config: RecoConfig) -> str | None:
    recall_from_tape(raw.key)
    reco = reconstruct_run(raw, config)  # None for a pedestal run
    return quality(reco).flag if reco is not None else None


@flow(name="reprocess-runs")
def reprocess(
    first_run: int | None = None,
    last_run: int | None = None,
    tag: str = "LNGS",
    reco_version: str | None = None,
    reco_config: str | None = None,
):
    """Every catalogued run in [first_run, last_run] (all when unset) lacking the version
    that ``reco_config`` (default: the settings') produces."""
    config = resolve_config(reco_config, reco_version)
    runs = select_runs(first_run, last_run, tag, version_of(config))
    states = {raw.run: reprocess_run(raw, config, return_state=True) for raw in runs}
    failed = sorted(run for run, state in states.items() if not state.is_completed())
    done = len(states) - len(failed)
    if failed:
        return Failed(message=f"{done} runs reprocessed, failed: {failed}")
    return Completed(message=f"{done} runs reprocessed with {version_of(config)}")
