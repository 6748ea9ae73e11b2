"""ROOT output: a real TTree `Events` with production's branch names, shared counter nSc,
Reco_params, atomic writes, and merging of chunk files without hadd."""

from __future__ import annotations

import json

import awkward as ak
import numpy as np
import pytest
import uproot

from cygno.reco import rootio
from tests.root6 import EVENTS_SUMMARY, requires_root, run_root


def _event(run, event, n):
    rec = {name: 0 for name in rootio.EVENT_BRANCHES}
    rec.update(run=run, event=event, pedestal_run=7, cmos_integral=float(event), lp_len=n * 3)
    clusters = {
        name: np.arange(n, dtype=dtype) + event for name, dtype in rootio.CLUSTER_BRANCHES.items()
    }
    clusters |= {name: np.arange(2 * n, dtype=t) for name, t in rootio.REDPIX_BRANCHES.items()}
    return rec, clusters


def _write(path, events, params=None, batch=3):
    params = params or {"reco_version": "0.1.0+abc", "params": {"picture": {"nsigma": 0.6}}}
    with rootio.RecoWriter(path, params) as writer:
        for i in range(0, len(events), batch):
            part = events[i : i + batch]
            writer.extend([e for e, _ in part], [c for _, c in part])
    return path


def test_events_is_a_ttree_with_branch_names_and_counter(tmp_path):
    events = [_event(5, i, i % 3) for i in range(7)]
    path = _write(tmp_path / "r.root", events)
    with uproot.open(path) as f:
        assert f.classname_of("Events") == "TTree"
        assert f.classname_of("Reco_params") == "TTree"
        assert f.classname_of("Reco_params_json") == "TObjString"
        tree = f["Events"]
        assert tree.num_entries == 7
        keys = set(tree.keys())
        assert (
            set(rootio.EVENT_BRANCHES)
            | set(rootio.CLUSTER_BRANCHES)
            | {"nSc"}
            | set(rootio.REDPIX_BRANCHES)
            | {"nRedpix"}
            == keys
        )
        assert tree["sc_integral"].count_branch.name == "nSc"
        assert tree["redpix_iz"].count_branch.name == "nRedpix"
        arrays = tree.arrays()
        assert arrays["nSc"].tolist() == [i % 3 for i in range(7)]
        assert ak.all(ak.num(arrays["sc_xmean"]) == arrays["nSc"])
        assert arrays["sc_integral"][5].tolist() == [5.0, 6.0]
        assert arrays["nRedpix"].tolist() == [2 * (i % 3) for i in range(7)]
        assert arrays["event"].tolist() == list(range(7))
        params = json.loads(str(f["Reco_params_json"]))
        assert params["reco_version"] == "0.1.0+abc"
        assert f["Reco_params"]["params_picture_nsigma"].array(library="np")[0] == 0.6
    assert not list(tmp_path.glob(".*tmp*"))


def test_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError), rootio.RecoWriter(tmp_path / "x.root", {}) as writer:
        writer.extend(*zip(*[_event(1, 0, 2)], strict=True))
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_merge_equals_single_file_in_event_order(tmp_path):
    events = [_event(9, i, (i * 7) % 4) for i in range(10)]
    params = {"reco_version": "v", "input_uri": "u", "input_adler32": "0000abcd"}
    single = _write(tmp_path / "all.root", events, {**params, "events": [0, 10]})
    a = _write(tmp_path / "a.root", events[:4], {**params, "events": [0, 4]})
    b = _write(tmp_path / "b.root", events[4:], {**params, "events": [4, 10]})
    merged = rootio.merge([b, a], tmp_path / "merged.root")
    with uproot.open(single) as f1, uproot.open(merged) as f2:
        one, two = f1["Events"].arrays(), f2["Events"].arrays()
        assert one.fields == two.fields
        for field in one.fields:
            assert ak.to_list(one[field]) == ak.to_list(two[field]), field
    assert rootio.read_params(merged)["events"] == [0, 10]
    assert rootio.read_params(merged)["input_adler32"] == "0000abcd"


def test_merge_refuses_mixed_versions(tmp_path):
    a = _write(tmp_path / "a.root", [_event(1, 0, 1)], {"reco_version": "v1"})
    b = _write(tmp_path / "b.root", [_event(1, 1, 1)], {"reco_version": "v2"})
    with pytest.raises(ValueError, match="reco_version"):
        rootio.merge([a, b], tmp_path / "m.root")


def test_empty_file_is_valid(tmp_path):
    path = _write(tmp_path / "e.root", [])
    with uproot.open(path) as f:
        assert f["Events"].num_entries == 0
        assert "nSc" in f["Events"]


@requires_root
def test_opens_in_root6(tmp_path):
    path = _write(tmp_path / "r.root", [_event(5, i, 2) for i in range(4)])
    read = run_root(EVENTS_SUMMARY, path)
    assert read["entries"] == 4
    assert read["drawn"] == 8
    assert read["params"] == 1
