"""Reconstruction inside the calling flow run: pedestal → chunks through the HTCondor
task runner → merge → catalog.

Not a subflow of its own: a subflow is one more flow run to create (several API round
trips, seconds when the server is busy) and to end (Prefect joins the flow run's
heartbeat thread, which sleeps in one-second steps). process-run and reprocess-runs
enter one chunk task runner (``chunk_task_runner()``; its kind and size come from the
settings: ``executor``, ``workers``) and submit the chunks to it directly, so their task
runs belong to the calling flow run.
"""

from __future__ import annotations

from dataclasses import dataclass

from prefect.futures import PrefectFuture
from prefect.task_runners import TaskRunner
from prefect.utilities.annotations import quote

from cygno.reco.config import RecoConfig, reco_version
from cygno.tasks.models import ChunkOutput, Pedestal, RawFile, RecoOutput
from cygno.tasks.pedestal import pedestal_for
from cygno.tasks.reconstruct import (
    find_reco,
    index_raw,
    merge_reco,
    plan_chunks,
    reconstruct_chunk,
    register_reco,
)
from cygno.tasks.resources import settings


@dataclass
class Reconstruction:
    """A run's reconstruction under way: its chunk jobs, or the output already made."""

    raw: RawFile
    config: RecoConfig
    pedestal: Pedestal | None = None
    chunks: list[PrefectFuture[ChunkOutput]] | None = None
    done: RecoOutput | None = None

    def finish(self) -> RecoOutput | None:
        """Wait for the chunks, merge them and record the output (None for a pedestal run)."""
        if self.chunks is None:
            return self.done
        version = reco_version(self.config)
        # quoted: the merge starts now and appends each chunk as it is done
        merged = merge_reco(self.raw, quote(self.chunks), version, self.pedestal)
        return register_reco(merged, self.config)


def start_reconstruction(
    runner: TaskRunner,
    raw: RawFile,
    config: RecoConfig,
    workers: int | None = None,
    look_up: bool = True,
) -> Reconstruction:
    """Find the pedestal maps and submit the run's chunk jobs without waiting for them.

    ``workers``: how many jobs the run's pictures are spread over (default: the
    settings'; reprocess-runs, which keeps the workers busy with several runs, asks
    for fewer and larger chunks). ``look_up=False`` skips asking whether the output
    exists (the caller selected runs that lack it).
    """
    version = reco_version(config)
    pedestal = pedestal_for(raw.run, raw.tag, config)
    if pedestal.run == raw.run:
        return Reconstruction(raw, config)  # a pedestal run: its maps are its product
    if look_up and (done := find_reco(raw, version, pedestal)) is not None:
        return Reconstruction(raw, config, pedestal, done=done)
    s = settings()
    chunks = plan_chunks(raw.pictures, s.chunk_events, workers or s.workers)
    # The index pass inflates the whole file serially on this host before any job can
    # start; it pays only when several waves of jobs would each inflate far into the file.
    waves = len(chunks) / max(1, s.workers)
    index = index_raw(raw) if waves > 2 else None
    futures = [
        runner.submit(
            reconstruct_chunk,
            {"raw": raw, "chunk": chunk, "pedestal": pedestal, "config": config, "index": index},
        )
        for chunk in chunks
    ]
    return Reconstruction(raw, config, pedestal, chunks=futures)
