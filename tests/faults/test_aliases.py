"""One canonical raw-file key per run: aliases of a run's key are refused with a clear
message and never touch the run's state, real copies under alias keys included."""

from __future__ import annotations

from cygno.flows.process_run import process_run
from cygno.storage import keys


def _state_of(plat, run_number: int):
    record = plat.catalog.run(run_number, "LNGS")
    rows = [r for r in plat.catalog.raw_files() if r.run == run_number]
    return record.raw, record.tape, record.failures, rows


def test_aliases_of_a_good_finished_run_never_touch_it(plat):
    (run,) = plat.simulate(runs=0)  # a pedestal run: processed in seconds
    assert process_run(plat.store.uri(run.key), return_state=True).is_completed()
    n, data = run.run_number, plat.store.get_bytes(run.key)
    before = _state_of(plat, n)
    assert len(before[3]) == 1 and len(before[1]) == 1

    # notifications for alias keys with no object behind them, as many as the threshold
    digits = "".join(chr(0x0660 + int(d)) for d in f"{n:05d}")  # Arabic-Indic
    for alias in (f"raw/LNGS/run{n:07d}.mid.gz", f"raw/LNGS/run{digits}.mid.gz"):
        state = process_run(plat.store.uri(alias), return_state=True)
        assert state.is_failed() and ("spells run" in state.message or "ASCII" in state.message)
    missing = process_run(plat.store.uri(keys.raw_key("LNGS", n, ".mid")), return_state=True)
    assert missing.is_failed() and "no such raw file" in missing.message

    # real copies of the run's bytes under alias keys
    padded = f"raw/LNGS/run{n:06d}.mid.gz"
    other_suffix = keys.raw_key("LNGS", n, ".mid")
    plat.store.put_bytes(padded, data)
    plat.store.put_bytes(other_suffix, data)
    refused = process_run(plat.store.uri(padded), return_state=True)
    assert refused.is_failed() and f"'run{n:05d}'" in refused.message
    second = process_run(plat.store.uri(other_suffix), return_state=True)
    assert second.is_failed() and "second raw file" in second.message

    assert _state_of(plat, n) == before  # one raw file, one tape copy, no failure counted
    assert not plat.catalog.is_abandoned(n, "LNGS")
    for key in (run.key, padded, other_suffix):  # nothing moved, nothing lost
        assert plat.store.get_bytes(key) == data
    assert [e.key for e in plat.tape.list(keys.RAW_PREFIX)] == [run.key]
