"""ROOT output: a TTree `Events` (ROOT 6 and uproot read it) plus a `Reco_params` record.

Per-cluster branches are written as one awkward record ``sc`` so they share a single
counter branch, renamed to production's ``nSc``; uproot names the fields ``sc_<name>``.
The reduced pixels are a second record, ``redpix``, counted by ``nRedpix``. Branch names
and types are production's (docs/reconstruction.md), ours added beside them.
`Reco_params` is both a one-entry TTree of the numeric parameters (easy to Scan in
ROOT) and a TObjString ``Reco_params_json`` holding everything (strings included:
reco version, input URI and its adler32). Files appear atomically: written under a
temporary name in the target directory, then renamed.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import uproot

from cygno.reco import slowcontrol
from cygno.reco.features import BRANCHES, INT_BRANCHES, REDPIX_BRANCHES, REDPIX_INDEX
from cygno.reco.pmt import PMTTrees, append_pmt
from cygno.reco.treetypes import list_of_records

TREE = "Events"
PARAMS_TREE = "Reco_params"
PARAMS_JSON = "Reco_params_json"
COUNTER = "nSc"
REDPIX_COUNTER = "nRedpix"
REDPIX_COMPRESSION = uproot.LZ4(1)

EVENT_BRANCHES: dict[str, str] = {
    "run": "int32",
    "event": "int32",
    "pedestal_run": "int32",
    "cmos_integral": "float32",
    "cmos_mean": "float32",
    "cmos_rms": "float32",
    "lp_len": "float32",
    "t_pedsub": "float32",
    "t_saturation": "float32",
    "t_zerosup": "float32",
    "t_xycut": "float32",
    "t_rebin": "float32",
    "t_medianfilter": "float32",
    "t_noisered": "float32",
    "t_DBSCAN": "float32",
    "t_variables": "float32",
    **slowcontrol.BRANCHES,
}

# Per-cluster branches: the feature library's list and types, in CYGNO's names.
CLUSTER_BRANCHES: dict[str, str] = {
    name: "int32" if name in INT_BRANCHES else "float32" for name in BRANCHES
} | {REDPIX_INDEX: "float32"}


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def _flat_params(tree: Mapping[str, Any], prefix: str = "") -> dict[str, np.ndarray]:
    """Numeric leaves of a nested dict as one-entry arrays named section_key."""
    out: dict[str, np.ndarray] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flat_params(value, name + "_"))
        elif isinstance(value, bool):
            out[name] = np.array([int(value)], np.int32)
        elif isinstance(value, int):
            out[name] = np.array([value], np.int64)
        elif isinstance(value, float):
            out[name] = np.array([value], np.float64)
        elif (
            isinstance(value, list | tuple)
            and value
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        ):
            for i, v in enumerate(value):
                out[f"{name}_{i}"] = np.array([v], np.float64)
    return out


def _jagged_record(
    pictures: Sequence[Mapping[str, np.ndarray]], fields: Mapping[str, str], prefix: str
):
    """One awkward record per picture from the `fields` arrays of each picture's dict."""
    first = next(iter(fields))
    counts = np.array([len(c[first]) if c else 0 for c in pictures], np.int64)
    contents = {}
    for name, dtype in fields.items():
        parts = [np.asarray(c[name], dtype=dtype) for c in pictures if c and len(c[name])]
        flat = np.concatenate(parts) if parts else np.zeros(0, dtype)
        contents[name[len(prefix) :]] = ak.unflatten(flat, counts)
    return ak.zip(contents, depth_limit=None)


def _counter(record: str) -> str:
    return COUNTER if record == "sc" else REDPIX_COUNTER


class RecoWriter:
    """Batched writer of one reco file; use as a context manager (commits on success)."""

    def __init__(
        self,
        path: str | os.PathLike,
        params: Mapping[str, Any],
        cluster_fields: Mapping[str, str] = CLUSTER_BRANCHES,
    ):
        self.path = Path(path)
        self.params = dict(params)
        self.cluster_fields = dict(cluster_fields)
        self._tmp = _tmp_name(self.path)
        self._file = uproot.recreate(self._tmp)
        types = {
            **EVENT_BRANCHES,
            "sc": list_of_records(self.cluster_fields, "sc_"),
            "redpix": list_of_records(REDPIX_BRANCHES, "redpix_"),
        }
        self._tree = self._file.mktree(TREE, types, counter_name=_counter)
        # the reduced pixels are most of the file's bytes: LZ4 (which ROOT 6 reads) packs
        # them ~10× faster than zlib, keeping the output step off the picture's budget
        for name in REDPIX_BRANCHES:
            self._tree[name].compression = REDPIX_COMPRESSION
        self.entries = 0

    def extend(
        self,
        events: Sequence[Mapping[str, Any]],
        clusters: Sequence[Mapping[str, np.ndarray]],
    ) -> None:
        """Append pictures: per-event scalars and per-cluster arrays (same order; each
        cluster dict also holds the picture's redpix_* arrays)."""
        if not events:
            return
        if len(events) != len(clusters):
            raise ValueError("events and clusters must have the same length")
        data: dict[str, Any] = {
            name: np.array([e[name] for e in events], dtype=dtype)
            for name, dtype in EVENT_BRANCHES.items()
        }
        data["sc"] = _jagged_record(clusters, self.cluster_fields, "sc_")
        data["redpix"] = _jagged_record(clusters, REDPIX_BRANCHES, "redpix_")
        self.extend_arrays(data)

    def extend_arrays(self, data: Mapping[str, Any]) -> None:
        """Append columns: EVENT_BRANCHES arrays and the jagged records ``sc``, ``redpix``
        (no reduced pixels when ``redpix`` is absent)."""
        n = len(data["run"])
        if "redpix" not in data:
            data = {**data, "redpix": _jagged_record([{}] * n, REDPIX_BRANCHES, "redpix_")}
        if n:
            self._tree.extend(dict(data))
            self.entries += n

    @property
    def file(self) -> Any:
        """The open output file, for the trees written beside Events (cygno.reco.pmt)."""
        return self._file

    def _write_params(self) -> None:
        self._file[PARAMS_JSON] = json.dumps(self.params, sort_keys=True, default=str)
        flat = _flat_params(self.params)
        if flat:
            tree = self._file.mktree(PARAMS_TREE, {k: v.dtype for k, v in flat.items()})
            tree.extend(flat)

    def close(self) -> Path:
        self._write_params()
        self._file.close()
        os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        self._file.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> RecoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def read_params(path: str | os.PathLike) -> dict[str, Any]:
    with uproot.open(path) as f:
        return json.loads(str(f[PARAMS_JSON]))


def _chunk_arrays(
    tree: Any, cluster_fields: Mapping[str, str], step: int
) -> Iterator[dict[str, Any]]:
    names = list(EVENT_BRANCHES) + list(cluster_fields) + list(REDPIX_BRANCHES)
    for arrays in tree.iterate(names, step_size=step, library="ak"):
        data: dict[str, Any] = {k: ak.to_numpy(arrays[k]) for k in EVENT_BRANCHES}
        data["sc"] = ak.zip({k[len("sc_") :]: arrays[k] for k in cluster_fields})
        data["redpix"] = ak.zip({k[len("redpix_") :]: arrays[k] for k in REDPIX_BRANCHES})
        yield data


def _first_event(tree: Any) -> int:
    if tree.num_entries == 0:
        return -1
    return int(tree["event"].array(entry_stop=1, library="np")[0])


class ChunkMerger:
    """Concatenates the chunk files of one run into one file, each chunk decoded and
    appended when it is added (in event order), so a run's first chunks are merged
    while its last ones still run; ``close`` writes the parameters and publishes.

    Reco_params is taken from the chunks (which must agree on the reco version and
    input); its ``events`` range becomes the union of the chunks' ranges.
    """

    def __init__(self, out: str | os.PathLike, step: int = 200):
        self.out = Path(out)
        self.step = step
        self._writer: RecoWriter | None = None
        self._pmt: PMTTrees | None = None
        self._first: Path | None = None
        self._last_event = -1
        self._ranges: list[Any] = []

    def add(self, path: str | os.PathLike) -> None:
        """Append one chunk file; its pictures must follow those already added."""
        with uproot.open(path) as f:  # its trees' metadata (hundreds of branches) read once
            params = json.loads(str(f[PARAMS_JSON]))
            tree = f[TREE]
            if self._writer is None:
                self._first = Path(path)
                self._writer = RecoWriter(self.out, params, _cluster_fields(tree))
                self._pmt = PMTTrees(self._writer.file)
            else:
                for key in ("reco_version", "input_uri", "input_adler32", "config"):
                    if params.get(key) != self._writer.params.get(key):
                        raise ValueError(
                            f"{path}: {key} differs from {self._first}, refusing to merge"
                        )
            first = _first_event(tree)
            if 0 <= first <= self._last_event:
                raise ValueError(f"{path}: picture {first} added after {self._last_event}")
            self._ranges.append(params.get("events"))
            for data in _chunk_arrays(tree, self._writer.cluster_fields, self.step):
                self._writer.extend_arrays(data)
                if len(data["event"]):
                    self._last_event = int(data["event"][-1])
            append_pmt(f, self._pmt)

    def close(self) -> Path:
        if self._writer is None:
            raise ValueError("nothing to merge")
        ranges = self._ranges
        self._writer.params["events"] = (
            [min(r[0] for r in ranges), max(r[1] for r in ranges)]
            if all(r is not None for r in ranges)
            else None
        )
        return self._writer.close()

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.abort()

    def __enter__(self) -> ChunkMerger:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _cluster_fields(tree: Any) -> dict[str, str]:
    return {
        k: str(np.dtype(tree[k].interpretation.content.to_dtype))
        for k in tree.keys(filter_name="sc_*")
    }


def _first_event_of(path: Path) -> int:
    with uproot.open(path) as f:
        return _first_event(f[TREE])


def merge(
    chunk_files: Iterable[str | os.PathLike],
    out: str | os.PathLike,
    step: int = 200,
) -> Path:
    """Concatenate chunk files of one run into one file, in event order (no hadd)."""
    files = sorted((Path(p) for p in chunk_files), key=_first_event_of)
    if not files:
        raise ValueError("nothing to merge")
    with ChunkMerger(out, step) as merger:
        for path in files:
            merger.add(path)
    return Path(out)
