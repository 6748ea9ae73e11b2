"""Reconstruction tasks: split a run into chunks, reconstruct each chunk (the function
call travels to an HTCondor job), merge the chunks, register the output."""

from __future__ import annotations

import hashlib
import math
import sys
import tempfile
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.context import TaskRunContext
from prefect.futures import PrefectFuture
from prefect.tasks import exponential_backoff

from cygno.htcondor_runner import HTCondorTaskRunner, RunnerOptions
from cygno.reco import rootio
from cygno.reco.config import RecoConfig, load_config, reco_version
from cygno.storage import keys
from cygno.storage.lineage import Product, is_done, lineage
from cygno.storage.midas import EventIndex, MidasFile
from cygno.tasks import jobs, resources
from cygno.tasks.models import Chunk, ChunkOutput, Pedestal, RawFile, RecoOutput
from cygno.tasks.retry import retry_unless

#: What a local chunk job takes from the flow's environment (when set): the kernel cache
#: of this host. A pool job gets none of it (the path means nothing on an execute node;
#: the image or installation there carries its own). Never the store: a job reads its
#: inputs through the URLs tasks.presign makes, never with the keys.
LOCAL_JOB_PASS_ENV = ("NUMBA_CACHE_DIR",)


def chunk_task_runner() -> HTCondorTaskRunner:
    """The task runner for reconstruct_chunk: local processes or an HTCondor pool."""
    s = resources.settings()
    local = s.executor == "local"
    return HTCondorTaskRunner(
        RunnerOptions(
            backend=s.executor,
            max_workers=s.workers if local else None,
            job_dir=s.data_dir / "jobs",
            pass_env=LOCAL_JOB_PASS_ENV if local else (),
            prepare_call="cygno.tasks.presign:prepare_chunk_call",
            schedd_name=s.htcondor_schedd,
            collector=s.htcondor_collector,
            spool=s.htcondor_spool,
            token_file=s.htcondor_token_file,
            python=s.htcondor_python or sys.executable,
            container_image=s.htcondor_container_image,
            request_memory_mb=s.htcondor_request_memory_mb,
        )
    )


def plan_chunks(pictures: int, chunk_events: int, workers: int) -> list[Chunk]:
    """At most ``chunk_events`` pictures per chunk, and at least one chunk per worker."""
    if pictures <= 0:
        return []
    size = max(1, min(chunk_events, math.ceil(pictures / max(1, workers))))
    return [Chunk(start, min(start + size, pictures)) for start in range(0, pictures, size)]


def _chunk_cache_key(context: TaskRunContext, parameters: dict) -> str:
    """Same raw bytes, pictures, pedestal and configuration → same chunk output."""
    raw: RawFile = parameters["raw"]
    chunk: Chunk = parameters["chunk"]
    config: RecoConfig = parameters["config"]
    pedestal: Pedestal = parameters["pedestal"]
    text = "|".join(
        (
            raw.uri,
            raw.adler32,
            str(chunk.start),
            str(chunk.stop),
            pedestal.key,
            reco_version(config),
        )
    )
    return "reco-chunk-" + hashlib.sha256(text.encode()).hexdigest()[:32]


def _index_cache_key(context: TaskRunContext, parameters: dict) -> str:
    """Same raw bytes → same index."""
    raw: RawFile = parameters["raw"]
    text = f"{raw.uri}|{raw.adler32}|{raw.size}"
    return "raw-index-" + hashlib.sha256(text.encode()).hexdigest()[:32]


@task(
    name="index-raw",
    retries=2,
    retry_delay_seconds=exponential_backoff(backoff_factor=5),
    timeout_seconds=3600,
    cache_key_fn=_index_cache_key,
    cache_expiration=timedelta(days=7),
)
def index_raw(raw: RawFile) -> EventIndex | None:
    """One pass over the run on the flow host: where every picture is and, for gzip,
    access points every 32 MiB (~10 kB each) that travel with the chunk jobs, so no job
    inflates the file from byte 0 up to its chunk. None for lz4/bz2 (no restartable
    state: a chunk job inflates from the start anyway, cheaply for lz4)."""
    with resources.store().open(raw.key, "rb") as stream, MidasFile(stream) as midas:
        if midas.compression not in ("gzip", None):
            return None
        return midas.index()


@task(
    name="find-reco",
    retries=2,
    retry_delay_seconds=5,
    timeout_seconds=120,
)
def find_reco(raw: RawFile, version: str, pedestal: Pedestal) -> RecoOutput | None:
    """The registered output of this run and version, if it was made from these very
    inputs (same pedestal maps, same raw bytes) and is still in the store."""
    product = reco_product(raw, version, pedestal)
    row = resources.catalog().reco_output(raw.run, raw.tag, version)
    store = resources.store()
    if not is_done(store, product, row.lineage if row and row.state == "done" else None):
        return None
    return RecoOutput(
        raw.run,
        raw.tag,
        version,
        product.key,
        store.uri(product.key),
        row.events,
        row.clusters,
        pedestal,
        lineage=product.lineage,
    )


def reco_product(raw: RawFile, version: str, pedestal: Pedestal) -> Product:
    """The reconstruction of ``raw`` by ``version`` with ``pedestal``'s maps."""
    made_by = lineage("reco", version=version, pedestal=pedestal.key, raw=raw.adler32)
    return Product(keys.reco_key(version, raw.tag, raw.run), made_by)


#: The function runs in the job (cygno.tasks.jobs, no Prefect import there); the
#: task engine, with these retries and this cache, stays on the flow host.
reconstruct_chunk = task(
    jobs.reconstruct_chunk,
    name="reconstruct-chunk",
    retries=3,
    retry_delay_seconds=[2, 30, 120],
    retry_jitter_factor=0.5,
    timeout_seconds=4 * 3600,
    cache_key_fn=_chunk_cache_key,
    cache_expiration=timedelta(days=7),
)


class ChunkFailed(RuntimeError):
    """A chunk of the run failed (after its own retries): merging again will not help."""


def _chunk_result(chunk: ChunkOutput | PrefectFuture[ChunkOutput]) -> ChunkOutput:
    if not isinstance(chunk, PrefectFuture):
        return chunk
    try:
        return chunk.result()
    except Exception as error:
        raise ChunkFailed(f"a chunk of the run failed: {error}") from error


@task(
    name="merge-reco",
    retries=2,
    retry_delay_seconds=exponential_backoff(backoff_factor=5),
    retry_condition_fn=retry_unless(ChunkFailed),
    timeout_seconds=3600,
    cache_policy=NO_CACHE,  # nothing to find again: its inputs are megabytes of chunk bytes
)
def merge_reco(
    raw: RawFile,
    chunks: Sequence[ChunkOutput | PrefectFuture[ChunkOutput]],
    version: str,
    pedestal: Pedestal,
) -> RecoOutput:
    """Concatenate the chunks in event order into reco/<version>/<tag>/reco_runNNNNN.root.

    ``chunks`` may be the chunk tasks' futures, in chunk order and quoted
    (``quote(futures)``, so Prefect does not wait for them before starting this task):
    each chunk is then decoded and appended as soon as it and those before it are done,
    the first chunks merged while the last still run. One chunk is the run's file as it
    stands (the same trees, values and parameters a merge would write): it is stored
    without decoding it again.
    """
    store = resources.store()
    product = reco_product(raw, version, pedestal)
    key = product.key
    if not isinstance(chunks[0], PrefectFuture):
        chunks = sorted(chunks, key=lambda o: o.chunk.start)
    outputs = []
    if len(chunks) == 1:
        outputs.append(_chunk_result(chunks[0]))
        store.put_bytes(key, outputs[0].root)
    else:
        with tempfile.TemporaryDirectory(prefix="cygno-merge-") as tmp:
            merged = Path(tmp) / "merged.root"
            with rootio.ChunkMerger(merged) as merger:
                for chunk in chunks:
                    outputs.append(_chunk_result(chunk))
                    part = Path(tmp) / f"chunk_{outputs[-1].chunk.start:06d}.root"
                    part.write_bytes(outputs[-1].root)
                    merger.add(part)
                    part.unlink()
            store.put_file(merged, key)
    events = sum(o.pictures - o.vetoed for o in outputs)
    clusters = sum(o.clusters for o in outputs)
    seconds = tuple(o.seconds for o in outputs)
    return RecoOutput(
        raw.run,
        raw.tag,
        version,
        key,
        store.uri(key),
        events,
        clusters,
        pedestal,
        seconds,
        product.lineage,
    )


@task(
    name="register-reco",
    retries=3,
    retry_delay_seconds=exponential_backoff(backoff_factor=5),
    timeout_seconds=300,
)
def register_reco(reco: RecoOutput, config: RecoConfig) -> RecoOutput:
    """Record the merged output in the catalog (idempotent upsert on run + version)."""
    resources.catalog().upsert_reco_output(
        run=reco.run,
        tag=reco.tag,
        reco_version=reco.reco_version,
        config_hash=config.hash,
        uri=reco.uri,
        events=reco.events,
        clusters=reco.clusters,
        state="done",
        lineage=reco.lineage,
    )
    return reco


def resolve_config(name_or_path: str | None = None, expected_version: str | None = None):
    """The reco configuration to run (default: the settings'), checked against a version.

    A reco version is ``<package>+<config hash>``: it cannot be produced from another
    configuration, so asking for one that does not match fails before any work.
    """
    config = load_config(name_or_path or resources.settings().reco_config)
    version = reco_version(config)
    if expected_version is not None and expected_version != version:
        raise ValueError(
            f"reco_version {expected_version!r} is not what configuration "
            f"{config.name!r} produces ({version!r}); pass the matching reco_config"
        )
    return config
