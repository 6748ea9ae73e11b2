"""The plain functions that travel to HTCondor jobs. No Prefect here: a job imports
this module by reference, and importing Prefect would cost every job seconds."""

from __future__ import annotations

import io
import os
import tempfile
import urllib.request
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import unquote, urlparse

from cygno.reco.config import RecoConfig
from cygno.reco.pedestal import PedestalMaps
from cygno.reco.reconstruct import reconstruct_file
from cygno.storage.midas import EventIndex
from cygno.tasks.models import Chunk, ChunkOutput, Pedestal, RawFile


@dataclass(frozen=True)
class ChunkAccess:
    """Where a chunk job reads its inputs without the store's keys: presigned HTTPS URLs
    (S3 store) or ``file://`` URLs (a filesystem store the job shares). Made on the
    flow host for each attempt by :func:`cygno.tasks.presign.prepare_chunk_call`."""

    raw_url: str = field(repr=False)
    pedestal_url: str = field(repr=False)


def _is_http(url: str) -> bool:
    return url.startswith(("http://", "https://"))


def _file_path(url: str) -> str:
    return unquote(urlparse(url).path)


def _read_all(url: str) -> bytes:
    if _is_http(url):
        with urllib.request.urlopen(url, timeout=300) as response:
            return response.read()
    return Path(_file_path(url)).read_bytes()


def _open_ranged(url: str, size: int) -> IO[bytes]:
    """A seekable reader: HTTP range requests on a presigned GET (the size is known, so
    no HEAD, which a GET signature would not allow)."""
    if _is_http(url):
        import fsspec

        return fsspec.filesystem("http").open(url, "rb", size=size, block_size=8 << 20)
    return open(_file_path(url), "rb")


#: The last pedestal maps this process loaded, by the identity of their bytes: a warm
#: worker serves every chunk of a run and the runs after it, which share their maps
#: (a LIME map takes 0.1-0.3 s to decode, a tenth of a short chunk).
_last_maps: tuple[tuple, PedestalMaps] | None = None


def _pedestal_maps(url: str) -> PedestalMaps:
    """The maps at ``url``, decoded again only when their bytes differ from the last."""
    global _last_maps
    if _is_http(url):  # a presigned GET allows no HEAD: the bytes are their identity
        data = _read_all(url)
        identity: tuple = (url.split("?", 1)[0], len(data), zlib.adler32(data))
    else:  # a replaced file (written aside, renamed) has another inode and mtime
        data, stat = None, os.stat(_file_path(url))
        identity = (_file_path(url), stat.st_ino, stat.st_size, stat.st_mtime_ns)
    if _last_maps is None or _last_maps[0] != identity:
        maps = PedestalMaps.load(io.BytesIO(data if data is not None else _read_all(url)))
        _last_maps = (identity, maps)
    return _last_maps[1]


def reconstruct_chunk(
    raw: RawFile,
    chunk: Chunk,
    pedestal: Pedestal,
    config: RecoConfig,
    index: EventIndex | None = None,
    access: ChunkAccess | None = None,
) -> ChunkOutput:
    """Reconstruct pictures [start, stop) of a run straight from the store; the chunk's
    ROOT file comes back as bytes (clusters only: small). With the run's `index` (see
    tasks.reconstruct.index_raw) the read starts near the chunk, not at byte 0. With
    `access` (a pool job) the inputs are read through its URLs; without, through the
    store the settings name."""
    if access is None:
        from cygno.tasks import resources  # settings: only where the job shares the store

        store = resources.store()
        maps = PedestalMaps.load(io.BytesIO(store.get_bytes(pedestal.key)))
        opened = store.open(raw.key, "rb")
    else:
        maps = _pedestal_maps(access.pedestal_url)
        opened = _open_ranged(access.raw_url, raw.size)
    with tempfile.TemporaryDirectory(prefix="cygno-chunk-") as tmp:
        out = Path(tmp) / f"chunk_{chunk.start:06d}.root"
        with opened as stream:
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
