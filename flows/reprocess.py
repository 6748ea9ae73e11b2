"""reprocess-runs: reconstruct catalogued runs again with a (new) reco version.

Each run: raw file back from tape if S3 no longer has it → reconstruct-run → quality.
Outputs of the new version go beside the old ones (the key holds the version); runs
that already have it are not selected. One run failing does not stop the others.

Concurrency: at most ``max_parallel_runs`` runs at once (each its own subflow, in a
thread), every run's chunks through its own task runner, in a sliding window: a run
starts as soon as the one ``max_parallel_runs`` places before it ends, whatever its
outcome. 2 suits local processes: while one run merges and plots its quality on the
flow host, the next one's chunks keep the workers busy; more keeps a large HTCondor
pool busy. The deployment itself allows one reprocess-runs at a time.
"""

from __future__ import annotations

from prefect import flow, task
from prefect.futures import wait
from prefect.states import Completed, Failed
from prefect.utilities.annotations import allow_failure

from cygno.flows.reconstruct_run import reconstruct_run
from cygno.reco.config import RecoConfig
from cygno.reco.config import reco_version as version_of
from cygno.tasks.bookkeeping import record_failure_hook, select_runs
from cygno.tasks.models import RawFile
from cygno.tasks.quality import quality, quality_trends
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
    return quality(reco, trends=False).flag if reco is not None else None  # trends: at the end


@task(name="reprocess-in-parallel")
def _reprocess_run_in_thread(raw: RawFile, config: RecoConfig) -> str | None:
    """Lets several reprocess-run subflows run at once (a flow call blocks its thread)."""
    return reprocess_run(raw, config)


@flow(name="reprocess-runs")
def reprocess(
    first_run: int | None = None,
    last_run: int | None = None,
    tag: str = "LNGS",
    reco_config: str | None = None,
    max_parallel_runs: int = 2,
):
    """Reconstruct every catalogued run of ``tag`` in [first_run, last_run] (all when
    unset) that lacks the reco version ``reco_config`` produces.

    ``reco_config`` is the one choice of what to produce: a built-in configuration
    (``lngs``, ``lnf``, ``mc``) or a TOML file on the workers (default: the settings').
    Its reco version, ``<package version>+<configuration hash>``, follows from it.
    """
    config = resolve_config(reco_config)
    runs = select_runs(first_run, last_run, tag, version_of(config))
    window = max(1, max_parallel_runs)
    futures = []
    for i, raw in enumerate(runs):
        after = [allow_failure(futures[i - window])] if i >= window else []
        futures.append(_reprocess_run_in_thread.submit(raw, config, wait_for=after))
    wait(futures)
    states = {raw.run: future.state for raw, future in zip(runs, futures, strict=True)}
    if runs:
        quality_trends(tag, version_of(config))  # once, not after every run
    failed = sorted(run for run, state in states.items() if not state.is_completed())
    done = len(states) - len(failed)
    if failed:
        return Failed(message=f"{done} runs reprocessed, failed: {failed}")
    return Completed(message=f"{done} runs reprocessed with {version_of(config)}")
