"""process-run end to end against the ephemeral Prefect server, with real files."""

from __future__ import annotations

import numpy as np
import pytest
import uproot

from cygno.flows.process_run import process_run
from cygno.reco.config import load_config, reco_version
from cygno.reco.pedestal import PedestalMaps
from cygno.reco.reconstruct import reconstruct_file
from cygno.storage import keys
from cygno.storage.checksum import adler32_of
from cygno.tasks.pedestal import pedestal_product


def _events(path) -> dict[str, np.ndarray]:
    """Every Events branch except the per-step timings (wall-clock, never equal)."""
    with uproot.open(path) as f:
        tree = f["Events"]
        names = [n for n in tree.keys() if not n.startswith("t_")]  # noqa: SIM118
        return {n: tree[n].array(library="ak") for n in names}


def test_run_processed_end_to_end(plat, tmp_path):
    pedestal_run, run = plat.simulate(runs=1, events=8)
    uri = plat.store.uri(run.key)

    result = process_run(uri)

    config = load_config(plat.settings.reco_config)
    version = reco_version(config)
    assert result["quality_flag"] in ("good", "warning", "bad")
    # a catalog row per step
    raw = plat.catalog.raw_file(uri)
    assert raw.state == "ingested"
    assert raw.adler32 == run.checksums.adler32 and raw.size == run.checksums.size
    assert raw.pictures == 8
    (copy,) = plat.catalog.tape_copies(raw_uri=uri)
    assert copy.state == "ok" and copy.adler32 == raw.adler32
    assert plat.catalog.logbook(run.run_number)["number_of_events"] == 8
    reco = plat.catalog.reco_output(run.run_number, "LNGS", version)
    assert reco.state == "done" and reco.events == 8
    quality = plat.catalog.quality_report(run.run_number, "LNGS", version)
    assert quality.flag == result["quality_flag"]
    record = plat.catalog.run(run.run_number, "LNGS")
    assert record.pedestal_run == pedestal_run.run_number
    assert record.run_type == "simulation:fe55" and record.events == 8  # from the logbook
    # the tape copy really holds the raw bytes
    assert plat.tape.verify(run.key, run.checksums.adler32)
    # the merged chunks equal one reconstruct_file pass over the same input
    local_raw = tmp_path / "raw.mid.gz"
    plat.store.get_file(run.key, local_raw)
    maps_key = pedestal_product("LNGS", pedestal_run.run_number, config).key
    pedestal = PedestalMaps.load(plat.store.open(maps_key, "rb"))
    direct = tmp_path / "direct.root"
    reconstruct_file(local_raw, pedestal, config, out_path=direct)
    merged = tmp_path / "merged.root"
    plat.store.get_file(keys.reco_key(version, "LNGS", run.run_number), merged)
    expected, got = _events(direct), _events(merged)
    assert set(got) == set(expected)
    for name in expected:
        assert got[name].tolist() == expected[name].tolist(), name
    # the PMT trees, made in the same chunk jobs, merge to the single pass's too
    with uproot.open(direct) as one, uproot.open(merged) as chunks:
        for tree in ("PMT_Events", "PMT_Avg_Events"):
            names = [n for n in one[tree].keys() if n != "t_waveforms"]  # noqa: SIM118
            assert one[tree].num_entries > 0
            expected_pmt = one[tree].arrays(names, library="ak").tolist()
            assert chunks[tree].arrays(names, library="ak").tolist() == expected_pmt, tree
    assert adler32_of(local_raw) == raw.adler32


def test_processing_twice_changes_nothing(plat):
    _, run = plat.simulate(runs=1, events=4)
    uri = plat.store.uri(run.key)
    first = process_run(uri)
    objects, summary = plat.listing(), plat.catalog.summary()
    rows = plat.catalog.run(run.run_number, "LNGS")

    second = process_run(uri)

    assert second.pop("chunk_seconds") == []  # nothing reconstructed the second time
    first.pop("chunk_seconds")
    assert second == first
    assert plat.listing() == objects
    assert plat.catalog.summary() == summary
    again = plat.catalog.run(run.run_number, "LNGS")
    assert again.raw == rows.raw and again.tape == rows.tape
    assert again.reco == rows.reco and again.quality == rows.quality


def test_truncated_file_is_quarantined_and_the_good_run_completes(plat):
    _, good, bad = plat.simulate(runs=2, events=4)
    data = plat.store.get_bytes(bad.key)
    plat.store.put_bytes(bad.key, data[: len(data) * 2 // 3])
    bad_uri, good_uri = plat.store.uri(bad.key), plat.store.uri(good.key)

    states = {uri: process_run(uri, return_state=True) for uri in (bad_uri, good_uri)}

    failed = states[bad_uri]
    assert failed.is_failed()
    assert "quarantine/LNGS/run00003.mid.gz" in failed.message
    assert "truncated" in failed.message.lower() or "offset" in failed.message.lower()
    assert not plat.store.exists(bad.key)
    target = keys.quarantine_key(bad.key)
    assert plat.store.exists(target)
    reason = plat.store.get_bytes(keys.quarantine_reason_key(target)).decode()
    assert '"reason"' in reason and "run00003" in reason
    record = plat.catalog.raw_file(plat.store.uri(target))
    assert record.state == "quarantined" and record.reason
    assert states[good_uri].is_completed()
    assert plat.catalog.raw_file(good_uri).state == "ingested"


def test_a_run_that_keeps_failing_is_abandoned_until_reset(plat):
    key = keys.raw_key("LNGS", 77)
    uri = plat.store.uri(key)
    for _ in range(3):  # three corrupt uploads of the run, each quarantined
        plat.store.put_bytes(key, b"not a MIDAS file")
        assert process_run(uri, return_state=True).is_failed()
    assert plat.catalog.is_abandoned(77, "LNGS")

    plat.store.put_bytes(key, b"not a MIDAS file")
    skipped = process_run(uri, return_state=True)
    assert skipped.is_cancelled() and "abandoned" in skipped.message

    plat.catalog.reset(77, "LNGS")
    assert process_run(uri, return_state=True).is_failed()


def test_notifications_for_keys_that_do_not_exist_never_count_against_the_run(plat):
    missing = plat.store.uri(keys.raw_key("LNGS", 78))
    for _ in range(4):
        state = process_run(missing, return_state=True)
        assert state.is_failed() and "no such raw file" in state.message
    assert not plat.catalog.is_abandoned(78, "LNGS") and plat.catalog.failures() == []


def test_reco_version_that_the_configuration_cannot_make_is_refused(plat):
    with pytest.raises(ValueError, match="reco_version"):
        process_run(plat.store.uri(keys.raw_key("LNGS", 1)), reco_version="0.0.0+deadbeef")
