"""The plain functions that travel to HTCondor jobs. No Prefect here: a job imports
this module by reference, and importing Prefect would cost every job seconds."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

from cygno.reco.config import RecoConfig
from cygno.reco.pedestal import PedestalMaps
from cygno.reco.reconstruct import reconstruct_file
from cygno.storage.midas import EventIndex
from cygno.tasks import resources
from cygno.tasks.models import Chunk, ChunkOutput, Pedestal, RawFile


def reconstruct_chunk(
    raw: RawFile,
    chunk: Chunk,
    pedestal: Pedestal,
    config: RecoConfig,
    index: EventIndex | None = None,
) -> ChunkOutput:
    """Reconstruct pictures [start, stop) of a run straight from the store; the chunk's
    ROOT file comes back as bytes (clusters only: small). With the run's `index` (see
    tasks.reconstruct.index_raw) the read starts near the chunk, not at byte 0."""
    store = resources.store()
    maps = PedestalMaps.load(io.BytesIO(store.get_bytes(pedestal.key)))
    with tempfile.TemporaryDirectory(prefix="cygno-chunk-") as tmp:
        out = Path(tmp) / f"chunk_{chunk.start:06d}.root"
        with store.open(raw.key, "rb") as stream:
            summary = reconstruct_file(
                stream,
                maps,
                config,
                events=(chunk.start, chunk.stop),
                out_path=out,
                run=raw.run,
                input_adler32=raw.adler32,
                input_uri=raw.uri,
                index=index,
            )
        data = out.read_bytes()
    return ChunkOutput(
        chunk, data, summary.pictures, summary.vetoed, summary.clusters, summary.seconds
    )
