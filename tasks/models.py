"""Small, picklable records the tasks hand to each other (and Prefect persists)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RawFile:
    """A validated raw file as the catalog knows it."""

    uri: str
    key: str
    run: int
    tag: str
    size: int
    adler32: str
    md5: str
    events: int
    pictures: int


@dataclass(frozen=True)
class Pedestal:
    run: int
    key: str


@dataclass(frozen=True)
class Chunk:
    """Pictures ``[start, stop)`` of one run, by picture number."""

    start: int
    stop: int


@dataclass(frozen=True)
class ChunkOutput:
    """One chunk's reconstruction, carried back from the job as bytes (small: clusters)."""

    chunk: Chunk
    root: bytes = field(repr=False)
    pictures: int
    vetoed: int
    clusters: int
    seconds: float


@dataclass(frozen=True)
class RecoOutput:
    run: int
    tag: str
    reco_version: str
    key: str
    uri: str
    events: int
    clusters: int
    pedestal: Pedestal | None = None
    chunk_seconds: tuple[float, ...] = ()  # reconstruction time of each chunk (monitoring)
    lineage: str | None = None  # storage.lineage id: version, pedestal maps, raw bytes


@dataclass(frozen=True)
class QualityOutcome:
    run: int
    tag: str
    reco_version: str
    flag: str
    reason: str
    summary_key: str
    summary: dict = field(default_factory=dict)
