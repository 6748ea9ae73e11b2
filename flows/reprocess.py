"""reprocess-runs: reconstruct catalogued runs again with a (new) reco version.

Each run: raw file back from tape if S3 no longer has it → its chunk jobs → merge →
catalog → quality. Outputs of the new version go beside the old ones (the key holds the
version); runs that already have it are not selected. One run failing does not stop the
others; it is counted against its run (step "reprocess").

Pipelined through ONE chunk task runner for the whole range, so the workers never wait
for a run's fixed costs: while a run is merged and judged on the flow host (the flow's
thread pool), the next runs' chunks keep the workers busy. A run's pictures go to one
chunk up to ``chunk_events`` (no job inflates a file up to its chunk, and a one-chunk run
is merged by storing the chunk), since the parallelism is across runs; at most
``max_parallel_runs`` runs have chunk jobs queued or running at once, which bounds what
waits on the flow host. The deployment itself allows one reprocess-runs at a time.
"""

from __future__ import annotations

from prefect import flow
from prefect.futures import PrefectFuture, wait
from prefect.states import Completed, Failed
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.utilities.annotations import quote

from cygno.flows.reconstruct_run import start_reconstruction
from cygno.reco.config import reco_version as version_of
from cygno.tasks.bookkeeping import record_failure, select_runs
from cygno.tasks.quality import quality, quality_trends
from cygno.tasks.reconstruct import (
    chunk_task_runner,
    merge_reco,
    register_reco,
    resolve_config,
)
from cygno.tasks.tape import recall_from_tape


@flow(name="reprocess-runs", task_runner=ThreadPoolTaskRunner(max_workers=4))
def reprocess(
    first_run: int | None = None,
    last_run: int | None = None,
    tag: str = "LNGS",
    reco_config: str | None = None,
    max_parallel_runs: int = 4,
):
    """Reconstruct every catalogued run of ``tag`` in [first_run, last_run] (all when
    unset) that lacks the reco version ``reco_config`` produces.

    ``reco_config`` is the one choice of what to produce: a built-in configuration
    (``lngs``, ``lnf``, ``mc``) or a TOML file on the workers (default: the settings').
    Its reco version, ``<package version>+<configuration hash>``, follows from it.
    """
    config = resolve_config(reco_config)
    version = version_of(config)
    runs = select_runs(first_run, last_run, tag, version)
    window = max(1, max_parallel_runs)
    judged: dict[int, PrefectFuture | None] = {}  # run → its quality task; None: nothing to do
    refused: dict[int, str] = {}  # run → why it could not start
    chunks: list[list[PrefectFuture]] = []
    with chunk_task_runner() as runner:
        for i, raw in enumerate(runs):
            if i >= window:
                wait(chunks[i - window])  # the run `window` places back has left the workers
            chunks.append([])
            try:
                recall_from_tape(raw.key)
                started = start_reconstruction(runner, raw, config, workers=1, look_up=False)
            except Exception as error:  # the run fails alone, with its reason
                refused[raw.run] = f"{type(error).__name__}: {error}"
                continue
            if started.chunks is None:  # a pedestal run
                judged[raw.run] = None
                continue
            chunks[-1] = started.chunks
            merged = merge_reco.submit(raw, quote(started.chunks), version, started.pedestal)
            registered = register_reco.submit(merged, config)
            judged[raw.run] = quality.submit(registered, trends=False)  # trends: at the end
        wait([future for future in judged.values() if future is not None])
    failed = dict(refused)
    for run, future in judged.items():
        if future is not None and not future.state.is_completed():
            failed[run] = future.state.message or future.state.name
    for run, message in sorted(failed.items()):
        record_failure(run, tag, "reprocess", message)
    if runs:
        quality_trends(tag, version)  # once, not after every run
    done = len(runs) - len(failed)
    if failed:
        return Failed(message=f"{done} runs reprocessed, failed: {sorted(failed)}")
    return Completed(message=f"{done} runs reprocessed with {version}")
