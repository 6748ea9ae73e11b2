"""The ``PMT_Events`` and ``PMT_Avg_Events`` TTrees, as production writes them.

One entry per waveform (``PMT_Events``) and per trigger's averaged waveform
(``PMT_Avg_Events``, channel 9), production's branch names and types (``I`` → int32,
``F`` → float32); the per-peak branches ``pmt_peak_*`` share the counter
``pmt_wf_nPeaks``. Two branches production lacks: ``pmt_wf_saturated`` (a sample at the
ADC's limits) and ``pmt_peak_Integral``. Trees are created with the first picture that
has digitizer banks, so a run without them has none.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import awkward as ak

from cygno.reco.pmt.event import PMTColumns, PMTReconstructor
from cygno.reco.pmt.params import PMTParams
from cygno.reco.treetypes import list_of_records

PMT_TREE = "PMT_Events"
AVG_TREE = "PMT_Avg_Events"
COUNTER = "pmt_wf_nPeaks"
PEAK_RECORD = "pmt_peak"
FLUSH_ENTRIES = 4096

PEAK_BRANCHES: dict[str, str] = {
    "Number": "int32",
    "Position": "float32",
    "Height": "float32",
    "HalfWidth": "float32",
    "FullWidth": "float32",
    "Integral": "float32",
}
_LINK = {
    "pmt_wf_run": "int32",
    "pmt_wf_event": "int32",
    "pmt_wf_trigger": "int32",
    "pmt_wf_channel": "int32",
    "pmt_wf_insideGE": "int32",
    "pmt_wf_sampling": "int32",
    "pmt_wf_TTT": "float32",
}
_TOT = {"pmt_TOT_time": "float32", "pmt_TOT_area": "float32", "t_waveforms": "float32"}
WF_BRANCHES: dict[str, str] = {
    "pmt_wf_ID": "int32",
    **_LINK,
    "pmt_wf_baseline": "float32",
    "pmt_wf_RMS": "float32",
    "pmt_wf_tot_integral": "float32",
    "pmt_wf_tot_charge": "float32",
    "pmt_wf_max_ampl": "float32",
    "pmt_wf_saturated": "int32",
    **_TOT,
}
AVG_BRANCHES: dict[str, str] = {**_LINK, **_TOT}
TREES = {PMT_TREE: WF_BRANCHES, AVG_TREE: AVG_BRANCHES}


def _types(scalars: dict[str, str]) -> dict[str, Any]:
    return {**scalars, PEAK_RECORD: list_of_records(PEAK_BRANCHES)}


class PMTTrees:
    """Buffered writer of both PMT trees into an open uproot file."""

    def __init__(self, file: Any):
        self.file = file
        self._trees: dict[str, Any] = {}
        self._buffers: dict[str, list[PMTColumns]] = {name: [] for name in TREES}
        self.entries = dict.fromkeys(TREES, 0)

    def add(self, name: str, columns: PMTColumns) -> None:
        self._buffers[name].append(columns)
        if sum(len(c) for c in self._buffers[name]) >= FLUSH_ENTRIES:
            self._flush(name)

    def extend(self, name: str, data: dict[str, Any]) -> None:
        """Append columns: the tree's scalar arrays and the jagged record ``pmt_peak``."""
        n = len(data[next(iter(TREES[name]))])
        if not n:
            return
        if name not in self._trees:
            self._trees[name] = self.file.mktree(
                name, _types(TREES[name]), counter_name=lambda _: COUNTER
            )
        self._trees[name].extend(data)
        self.entries[name] += n

    def _flush(self, name: str) -> None:
        parts = self._buffers[name]
        if not parts:
            return
        self._buffers[name] = []
        cols = PMTColumns.concatenate(parts)
        data: dict[str, Any] = {k: cols.scalars[k] for k in TREES[name]}
        data[PEAK_RECORD] = ak.zip(
            {k: ak.unflatten(v, cols.counts) for k, v in cols.peaks.items()}, depth_limit=None
        )
        self.extend(name, data)

    def flush(self) -> None:
        for name in TREES:
            self._flush(name)


class PMTStage:
    """The PMT step of a picture loop: analyse each picture's banks, buffer, write.

    The ODB is read (``odb()``) at the first picture with digitizer banks only.
    """

    def __init__(self, params: PMTParams, file: Any, run: int, odb: Callable[[], dict[str, Any]]):
        self.params = params
        self.trees = PMTTrees(file)
        self.run = run
        self._odb = odb
        self._reco: PMTReconstructor | None = None

    def add(self, number: int, event: Any) -> None:
        if not self.params.enabled:
            return
        if self._reco is None:
            if "DGH0" not in event.banks:
                return
            self._reco = PMTReconstructor(self.params, self._odb(), self.run)
        result = self._reco.event(number, event)
        if result is not None:
            self.trees.add(PMT_TREE, result[0])
            self.trees.add(AVG_TREE, result[1])

    def close(self) -> None:
        self.trees.flush()


def _chunk_data(source: Any, name: str, step: int) -> Iterable[dict[str, Any]]:
    if name not in source:
        return
    scalars = list(TREES[name])
    peaks = [f"{PEAK_RECORD}_{k}" for k in PEAK_BRANCHES]
    for arrays in source[name].iterate(scalars + peaks, step_size=step, library="ak"):
        data: dict[str, Any] = {k: ak.to_numpy(arrays[k]) for k in scalars}
        data[PEAK_RECORD] = ak.zip({k: arrays[f"{PEAK_RECORD}_{k}"] for k in PEAK_BRANCHES})
        yield data


def append_pmt(source: Any, trees: PMTTrees, step: int = 2000) -> None:
    """Append the PMT trees of one chunk file (an open ``uproot`` file) to ``trees``."""
    for name in TREES:
        for data in _chunk_data(source, name, step):
            trees.extend(name, data)
