"""process-run on a corrected re-upload of a run: a new version of the raw file,
reconstructed and archived again, with the first version's outputs kept."""

from __future__ import annotations

from cygno.flows.process_run import process_run
from cygno.reco.simulate.run import simulate_run
from cygno.storage import keys


def test_a_corrected_reupload_is_processed_again_and_the_old_outputs_are_kept(plat):
    _pedestal, run = plat.simulate(runs=1, events=3)
    uri = plat.store.uri(run.key)
    first = process_run(uri)
    reco_key = plat.store.key_of(first["reco"])
    first_reco = plat.store.get_bytes(reco_key)
    assert process_run(uri)["reco"] == first["reco"]  # a duplicate: nothing new
    assert plat.catalog.raw_file(uri).version == 1

    with plat.store.publish(run.key) as out:  # the DAQ uploads a corrected file
        simulate_run(out, run.run_number, 3, "fe55", (256, 256), 7, write_truth=False)
    second = process_run(uri)

    raw = plat.catalog.raw_file(uri)
    assert raw.version == 2 and raw.adler32 == out.checksums.adler32 != run.checksums.adler32
    assert second["reco"] == first["reco"]  # the usual key, new content
    assert plat.store.get_bytes(reco_key) != first_reco
    [earlier] = plat.catalog.raw_file_versions(uri)
    assert earlier.adler32 == run.checksums.adler32
    kept = {item["was"]: item["uri"] for item in earlier.kept}
    assert plat.store.get_bytes(plat.store.key_of(kept[first["reco"]])) == first_reco
    quality = keys.quality_prefix(first["reco_version"], "LNGS", run.run_number)
    in_store = [plat.store.key_of(w) for w in kept if w.startswith(plat.store.url + "/")]
    assert any(key.startswith(quality) for key in in_store)
    old_tape = plat.tape.key_of(kept[plat.tape.uri(run.key)])
    assert plat.tape.verify(old_tape, run.checksums.adler32)  # both versions on tape
    assert plat.tape.verify(run.key, raw.adler32)
    [copy] = plat.catalog.tape_copies(raw_uri=uri)
    assert (copy.adler32, copy.state) == (raw.adler32, "ok")
    assert plat.catalog.quality_report(run.run_number, "LNGS", first["reco_version"]) is not None
