"""reconstruct-run: pedestal → chunks through the HTCondor task runner → merge → catalog.

A subflow of process-run and reprocess-runs; its task runner is chosen per call from the
settings (``executor``, ``workers``), so the same code runs on local processes or a pool.
"""

from __future__ import annotations

from prefect import flow

from cygno.reco.config import RecoConfig, reco_version
from cygno.tasks.models import RawFile, RecoOutput
from cygno.tasks.pedestal import pedestal_for
from cygno.tasks.reconstruct import (
    chunk_task_runner,
    find_reco,
    index_raw,
    merge_reco,
    plan_chunks,
    reconstruct_chunk,
    register_reco,
)
from cygno.tasks.resources import settings


@flow(
    name="reconstruct-run",
    flow_run_name="reconstruct-{raw.tag}-{raw.run}",
    validate_parameters=False,
)
def _reconstruct_run(raw: RawFile, config: RecoConfig) -> RecoOutput | None:
    version = reco_version(config)
    pedestal = pedestal_for(raw.run, raw.tag, config)
    if pedestal.run == raw.run:
        return None  # a pedestal run: its maps are its product, nothing to cluster
    if (done := find_reco(raw, version, pedestal)) is not None:
        return done
    chunks = plan_chunks(raw.pictures, settings().chunk_events, settings().workers)
    # The index pass inflates the whole file serially on this host before any job can
    # start; it pays only when several waves of jobs would each inflate far into the file.
    waves = len(chunks) / max(1, settings().workers)
    index = index_raw(raw) if waves > 2 else None
    futures = [reconstruct_chunk.submit(raw, chunk, pedestal, config, index) for chunk in chunks]
    merged = merge_reco(raw, [future.result() for future in futures], version, pedestal)
    return register_reco(merged, config)


def reconstruct_run(raw: RawFile, config: RecoConfig, **options) -> RecoOutput | None:
    """Run the subflow with the chunk task runner the settings ask for."""
    runner = chunk_task_runner()
    return _reconstruct_run.with_options(task_runner=runner)(raw, config, **options)
